"""The filters of the list pages, one django-filter FilterSet per list.

A list view binds its FilterSet to request.GET (or None when there are no
parameters, so an unfiltered page is unbound) and shows `filterset.form`.
"""

from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from scoring import modes
from scoring.models import Activity, Agent, Candidate, Memory, Node, RunStatus, ScoringRun, Section
from scoring.models.activity import TARGET_LABELS

DATE_INPUT = forms.DateInput(attrs={"type": "date"})
# The largest id a row can have (BigAutoField, on every database): a bigger
# one in a query string named no row, and overflowed SQLite's integers.
MAX_ID = 2**63 - 1


def id_filter(field_name):
    """An id from the query string; a value that cannot be one is ignored."""
    return django_filters.NumberFilter(field_name=field_name, min_value=0, max_value=MAX_ID, decimal_places=0)


def agent_named(value):
    """The agent that ?agent= names by its id or its name, or None.

    A value no agent can have (a NUL, which PostgreSQL refuses in any string;
    a digit that is not ASCII; an id past MAX_ID) names none.
    """
    if not value or "\x00" in value:
        return None
    if value.isascii() and value.isdigit():
        pk = int(value)
        return Agent.objects.filter(pk=pk).first() if pk <= MAX_ID else None
    return Agent.objects.filter(name=value).first()


def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def _activity_verbs():
    return [(v, v) for v in Activity.objects.order_by("verb").values_list("verb", flat=True).distinct()]


def _activity_target_types():
    types = (Activity.objects.exclude(target_type="").order_by("target_type")
             .values_list("target_type", flat=True).distinct())
    return [(t, TARGET_LABELS.get(t, t)) for t in types]


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


# The memories list's flags (maths.memory_flags's names) and their labels.
MEMORY_FLAGS = {"never": "never matters", "harmful": "harmful"}


class MemoryFilter(django_filters.FilterSet):
    """The memories list's filters: a search in key and text, and a flag.

    Flags come from the latest full run's cells, not from the table: the
    view passes them in as `flags_by_memory` ({memory_id: [flag, ...]}).
    """

    q = django_filters.CharFilter(method="filter_search", label="Search")
    flag = django_filters.ChoiceFilter(choices=list(MEMORY_FLAGS.items()), method="filter_flag",
                                       empty_label="all memories", label="Show")

    class Meta:
        model = Memory
        fields = []

    def __init__(self, data=None, queryset=None, *, flags_by_memory=None, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.flags_by_memory = flags_by_memory or {}

    def filter_search(self, memories, name, value):
        value = value.strip()
        if not value:
            return memories
        return memories.filter(Q(key__icontains=value) | Q(text__icontains=value))

    def filter_flag(self, memories, name, flag):
        return memories.filter(pk__in=[pk for pk, flags in self.flags_by_memory.items() if flag in flags])


class NatsFilter(django_filters.NumberFilter):
    """A number filter bounded by its own min_value and max_value only
    (django-filter adds a bound of 1e50, and a huge value got both errors)."""

    def get_max_validator(self):
        return None


class CandidateFilter(django_filters.FilterSet):
    """The candidate list's filters: an agent (by id), a status, a memory in
    the response's context (part of its key), a divergence range (nats) and
    the run that found them. A value that does not fit (an agent that is not
    an id, an unknown status) is ignored rather than refused: a bookmark may
    outlive what it named."""

    agent = id_filter("agent_id")
    status = django_filters.ChoiceFilter(choices=Candidate.Status.choices)
    memory = django_filters.CharFilter(method="filter_memory", label="Memory key")
    # Bounded, so no value overflows a database's float (a larger one is named as a problem).
    min_divergence = NatsFilter(field_name="divergence", lookup_expr="gte", min_value=-1e9, max_value=1e9)
    max_divergence = NatsFilter(field_name="divergence", lookup_expr="lte", min_value=-1e9, max_value=1e9)
    run = id_filter("run_id")

    class Meta:
        model = Candidate
        fields = []

    def filter_memory(self, candidates, name, value):
        """Candidates whose response had a memory with `value` in its key
        before it: in an earlier section, or earlier in the conversation."""
        value = value.strip()
        if not value or "\x00" in value:
            return candidates
        before = ~Q(section=Section.CONVERSATION) | Q(index__lt=OuterRef("response__index"))
        memories = Node.objects.filter(before, snapshot=OuterRef("snapshot"), memory_key__icontains=value)
        return candidates.filter(Exists(memories))


def mode_choices():
    """The registry's modes as (value, label), in its order (also the run
    list's mode select)."""
    return [(m.name.value, m.name.label) for m in modes.all()]


class RunFilter(django_filters.FilterSet):
    """The run list's filters: an agent (by id), a status and a mode. A value
    that does not fit is ignored rather than refused: the page is reached
    from links, and a bookmark may outlive a choice."""

    agent = id_filter("agent_id")
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    mode = django_filters.ChoiceFilter(choices=mode_choices)

    class Meta:
        model = ScoringRun
        fields = []
