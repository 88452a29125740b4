"""The filters of the list pages, one django-filter FilterSet per list.

A list view binds its FilterSet to request.GET (or None when there are no
parameters, so an unfiltered page is unbound) and shows `filterset.form`.
"""

from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.utils import timezone

from scoring.models import Activity

DATE_INPUT = forms.DateInput(attrs={"type": "date"})


def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def _activity_verbs():
    return [(v, v) for v in Activity.objects.order_by("verb").values_list("verb", flat=True).distinct()]


def _activity_target_types():
    types = (Activity.objects.exclude(target_type="").order_by("target_type")
             .values_list("target_type", flat=True).distinct())
    return [(t, t) for t in types]


class ActivityFilterForm(forms.Form):
    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end date is before the start date.")
        return data


class ActivityFilter(django_filters.FilterSet):
    """The activity log's filters. Dates are whole days in the site's time
    zone, "until" included."""

    actor = django_filters.CharFilter(field_name="actor_name", lookup_expr="icontains", label="Who")
    # Choices are read when the form is made, so a new verb is offered at once.
    verb = django_filters.ChoiceFilter(choices=_activity_verbs, empty_label="anything", label="Did")
    target_type = django_filters.ChoiceFilter(choices=_activity_target_types, empty_label="anything",
                                              label="To a")
    since = django_filters.DateFilter(method="filter_since", label="From", widget=DATE_INPUT)
    until = django_filters.DateFilter(method="filter_until", label="Until", widget=DATE_INPUT)

    class Meta:
        model = Activity
        fields = []
        form = ActivityFilterForm

    def filter_since(self, entries, name, day):
        return entries.filter(created_at__gte=_day_start(day))

    def filter_until(self, entries, name, day):
        return entries.filter(created_at__lt=_day_start(day + timedelta(days=1)))
