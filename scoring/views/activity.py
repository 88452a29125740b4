"""The activity log: who did what, when, filtered and paginated."""

from datetime import datetime, time, timedelta

from django import forms
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone

from scoring.access import require_perm
from scoring.models import Activity

# Where a target of each type is shown, so the log links to it.
TARGET_ROUTES = {
    "agent": "agent_detail",
    "snapshot": "snapshot_detail",
    "scoringrun": "run_detail",
    "memory": "memory_detail",
    "candidate": "candidate_detail",
    "trainjob": "train_job_detail",
}


class ActivityFilterForm(forms.Form):
    actor = forms.CharField(required=False, label="Who")
    verb = forms.ChoiceField(required=False, label="Did")
    target_type = forms.ChoiceField(required=False, label="To a")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, verbs=(), target_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["verb"].choices = [("", "anything")] + [(v, v) for v in verbs]
        self.fields["target_type"].choices = [("", "anything")] + [(t, t) for t in target_types]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end date is before the start date.")
        return data

    def filter(self, entries):
        data = self.cleaned_data
        if data["actor"]:
            entries = entries.filter(actor_name__icontains=data["actor"])
        if data["verb"]:
            entries = entries.filter(verb=data["verb"])
        if data["target_type"]:
            entries = entries.filter(target_type=data["target_type"])
        # Dates are whole days in the site's time zone, "until" included.
        if data["since"]:
            entries = entries.filter(created_at__gte=_day_start(data["since"]))
        if data["until"]:
            entries = entries.filter(created_at__lt=_day_start(data["until"] + timedelta(days=1)))
        return entries


def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def activity_list(request):
    require_perm(request, "scoring.view_activity")
    entries = Activity.objects.select_related("actor")
    form = ActivityFilterForm(
        request.GET or None,
        verbs=Activity.objects.order_by("verb").values_list("verb", flat=True).distinct(),
        target_types=Activity.objects.exclude(target_type="")
        .order_by("target_type")
        .values_list("target_type", flat=True)
        .distinct(),
    )
    if form.is_bound:
        entries = form.filter(entries) if form.is_valid() else entries.none()

    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    for entry in page.object_list:
        entry.target_url = _target_url(entry)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "scoring/activity_list.html",
        {"form": form, "page": page, "query": query.urlencode(), "filtered": form.is_bound},
    )


def _target_url(entry):
    route = TARGET_ROUTES.get(entry.target_type)
    if not route or not entry.target_id:
        return ""
    try:
        return reverse(route, args=[entry.target_id])
    except NoReverseMatch:
        return ""


urlpatterns = [path("activity/", activity_list, name="activity_list")]
