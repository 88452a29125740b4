"""The filters of the list pages, one django-filter FilterSet per list, and
the one rule for a filter that cannot apply.

A list view binds its FilterSet to request.GET (or None when there are no
parameters, so an unfiltered page is unbound), lists `filtered(filterset)`
and gives its template `filter_notice(request, filterset)`, the problems and
the link that clears them, which templates/scoring/_filter_problems.html shows.

The rule is django-filter's own (FilterView's `strict`): a list whose filters
cannot all be applied (an unknown agent, a bad number, an unknown choice)
matches nothing, and says why, filter by filter. Applying the rest would show
a list that seems filtered and is not; a bookmark that outlived what it named
is answered in words, with a link that clears the filters.
"""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from scoring import modes
from scoring.models import Activity, Agent, Candidate, Memory, Node, RunStatus, ScoringRun, Section, Snapshot
from scoring.models.activity import TARGET_LABELS

DATE_INPUT = forms.DateInput(attrs={"type": "date"})
# The largest id a row can have (BigAutoField, on every database): a bigger
# one in a query string named no row, and overflowed SQLite's integers.
MAX_ID = 2**63 - 1


def is_id(value):
    """Whether a query string's `value` is written as an id: ASCII digits (not
    str.isdigit() alone, which takes "²" and "١٢")."""
    return value.isascii() and value.isdigit()


def row_with_id(rows, value):
    """The row of `rows` (a model, or a queryset of it) whose id `value` is, or
    None: a value that cannot be an id (not is_id, past MAX_ID) is never sent
    to the database."""
    if not is_id(value) or int(value) > MAX_ID:
        return None
    rows = rows.objects.all() if isinstance(rows, type) else rows
    return rows.filter(pk=int(value)).first()


def agent_named(value):
    """The agent that ?agent= names by its id or its name, or None.

    A value no agent can have (a NUL, which PostgreSQL refuses in any string;
    a digit that is not ASCII; an id past MAX_ID) names none.
    """
    if not value or "\x00" in value:
        return None
    if value.isascii() and value.isdigit():
        return row_with_id(Agent, value)
    return Agent.objects.filter(name=value).first()


class RowField(forms.Field):
    """A row named in the query string, found by `find(value)`; a value that
    names none is the error `missing` (code "no_such_row")."""

    def __init__(self, *, find, missing, **kwargs):
        super().__init__(**kwargs)
        self.find, self.missing = find, missing

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        row = self.find(value)
        if row is None:
            raise ValidationError(self.missing, code="no_such_row")
        return row


class RowFilter(django_filters.Filter):
    field_class = RowField


def by_agent(**kwargs):
    """An agent by its id or its name (as links and bookmarks name it)."""
    return RowFilter(field_name="agent", find=agent_named, missing="there is no such agent.", label="Agent", **kwargs)


def by_run(**kwargs):
    """A scoring run by its id."""
    return RowFilter(field_name="run", find=lambda value: row_with_id(ScoringRun, value),
                     missing="there is no such run.", **kwargs)


def by_snapshot(**kwargs):
    """A snapshot by its id."""
    return RowFilter(field_name="snapshot", find=lambda value: row_with_id(Snapshot, value),
                     missing="there is no such snapshot.", **kwargs)


def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def _activity_verbs():
    return [(v, v) for v in Activity.objects.order_by("verb").values_list("verb", flat=True).distinct()]


def _activity_target_types():
    types = (Activity.objects.exclude(target_type="").order_by("target_type")
             .values_list("target_type", flat=True).distinct())
    return [(t, TARGET_LABELS.get(t, t)) for t in types]


def check_range(form, start, end, message):
    """Name `end` as a problem where it comes before `start` (both read).

    `end` stays in cleaned_data (add_error drops it): it was read, and the
    form shows it as read, in its own input (see `unread`)."""
    data = form.cleaned_data
    if data.get(start) is not None and data.get(end) is not None and data[start] > data[end]:
        value = data[end]
        form.add_error(end, message)
        data[end] = value


class ActivityFilterForm(forms.Form):
    def clean(self):
        data = super().clean()
        check_range(self, "since", "until", "The end date is before the start date.")
        return data


class ActivityFilter(django_filters.FilterSet):
    """The activity log's filters. Dates are whole days in the site's time
    zone, "until" included."""

    actor = django_filters.CharFilter(field_name="actor_name", lookup_expr="icontains", label="Who")
    # Choices are read when the form is made, so a new verb is offered at once.
    verb = django_filters.ChoiceFilter(choices=_activity_verbs, empty_label="anything", label="Did")
    # "Target", not "To a": the label also opens a problem's line ("Target “x”: ...").
    target_type = django_filters.ChoiceFilter(choices=_activity_target_types, empty_label="anything",
                                              label="Target")
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


class CandidateFilterForm(forms.Form):
    def clean(self):
        data = super().clean()
        # A reversed range matched nothing without a word (the activity log's dates say it).
        check_range(self, "min_divergence", "max_divergence", "The end of the range is below its start.")
        return data


class CandidateFilter(django_filters.FilterSet):
    """The candidate list's filters: an agent (by id or name), a status, a
    memory in the response's context (part of its key), a divergence range
    (nats), the run that found them and the snapshot they are in."""

    agent = by_agent()
    status = django_filters.ChoiceFilter(choices=Candidate.Status.choices, label="Status")
    memory = django_filters.CharFilter(method="filter_memory", label="Memory in its context")
    # Bounded, so no value overflows a database's float (a larger one is named as a problem).
    min_divergence = NatsFilter(field_name="divergence", lookup_expr="gte", min_value=-1e9, max_value=1e9,
                                label="Divergence from")
    max_divergence = NatsFilter(field_name="divergence", lookup_expr="lte", min_value=-1e9, max_value=1e9,
                                label="Divergence to")
    run = by_run(label="Found by run")
    snapshot = by_snapshot(label="In snapshot")

    class Meta:
        model = Candidate
        fields = []
        form = CandidateFilterForm

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
    """The run list's filters: an agent (by id or name), a status and a mode."""

    agent = by_agent()
    status = django_filters.ChoiceFilter(choices=RunStatus.choices, label="Status")
    mode = django_filters.ChoiceFilter(choices=mode_choices, label="Mode")

    class Meta:
        model = ScoringRun
        fields = []


class AgentOnlyFilter(django_filters.FilterSet):
    """The review queue's filter and the samples export's: an agent (by id or
    name). Neither lists its queryset: they read the agent it names."""

    agent = by_agent()

    class Meta:
        model = Candidate
        fields = []


# --- filters that cannot apply ------------------------------------------------

def filtered(filterset):
    """The rows `filterset` selects; none at all where one of its filters
    cannot apply (FilterView's `strict`), never the rest applied alone."""
    return filterset.queryset.none() if filter_problems(filterset) else filterset.qs


def filter_problems(filterset):
    """One line for each filter of `filterset` that cannot apply, in the
    words a list shows above itself: the filter's label as its form shows
    it, the value as typed, and why (“Agent “999”: there is no such agent.”).
    [] when every filter applies, or none was asked for."""
    if not filterset.is_bound or filterset.is_valid():
        return []
    form = filterset.form
    lines = []
    for name, errors in form.errors.as_data().items():
        why = " ".join(_why(form.fields.get(name), e) for e in errors)
        if name not in form.fields:  # the form's own clean(): no one value to name
            lines.append(why[:1].upper() + why[1:])
            continue
        lines.append(f"{form.fields[name].label} “{_shown(form.data.get(name, ''))}”: {_after_label(why)}")
    return lines


def unread(filterset):
    """The filters whose value their field could not read (not a date, not a
    number, too big): a date or number input shows such a value empty (and
    Chromium logs a warning), so the form shows it in a text input. A value
    that was read and is refused beside another (a reversed range) is not
    among them: its input keeps its type."""
    if not filterset.is_bound or filterset.is_valid():
        return set()
    return set(filterset.form.errors) - set(filterset.form.cleaned_data)


def filter_notice(request, filterset):
    """What a list gives templates/scoring/_filter_problems.html: the lines
    of filter_problems and the link that clears the filters."""
    return {"filter_problems": filter_problems(filterset), "clear_url": clear_filters_url(request, filterset)}


def agent_choices(typed):
    """An agent select's choices, the typed value among them (typed_choices)."""
    return typed_choices(Agent.objects.values_list("id", "name"), typed)


def clear_filters_url(request, filterset):
    """This page without `filterset`'s filters (nor a page number, which the
    filters chose), keeping the rest of its query string (the sort)."""
    query = request.GET.copy()
    for name in (*filterset.filters, "page"):
        query.pop(name, None)
    return f"{request.path}?{query.urlencode()}" if query else request.path


def typed_values(filterset):
    """{filter: the value its form field shows}: the value as typed, so the
    person corrects what they asked for; an applied value as it was read (a
    search without its spaces, an agent named by name as its id, which the
    agent select knows). A NUL is shown as the problem's line names it, as
    the four characters \\x00: in a field, a browser showed it as U+FFFD."""
    if not filterset.is_bound:
        return dict.fromkeys(filterset.filters, "")
    filterset.is_valid()  # cleans the form: its valid values are in cleaned_data
    data, cleaned = filterset.data, filterset.form.cleaned_data
    shown = {}
    for name in filterset.filters:
        value = cleaned.get(name)
        if hasattr(value, "pk"):
            shown[name] = str(value.pk)
        elif isinstance(value, str):
            shown[name] = value
        elif isinstance(value, date):
            # "01/02/2025" is read as a date; a date input shows only "2025-01-02".
            shown[name] = value.isoformat()
        elif isinstance(value, Decimal):
            shown[name] = str(value)  # " 5 " is read as 5; a number input shows it empty
        else:
            shown[name] = _visible_nul(data.get(name, ""))
    return shown


def typed_choices(choices, typed):
    """A select's [(value, text), ...] with the typed value among them, so a
    value that is not a choice stays selected in the form, beside its problem."""
    choices = list(choices)
    if typed and typed not in {str(value) for value, _ in choices}:
        choices.append((typed, _shown(typed)))
    return choices


def _shown(value, limit=60):
    """A typed value as a problem names it: cut short, a NUL made visible."""
    value = _visible_nul(value)
    return value if len(value) <= limit else value[:limit] + "…"


def _visible_nul(value):
    return value.replace("\x00", "\\x00")


def _after_label(why):
    """A reason as it reads after a label's colon: "Until “…”: the end date
    is…", not "…: The end date…" (an acronym keeps its capitals)."""
    return why if why[1:2].isupper() else why[:1].lower() + why[1:]


def _why(field, error):
    """Why a value cannot apply, in a few words (Django's message where ours
    would say no more)."""
    if error.code == "invalid_choice":
        return "not one of the choices."
    if error.code == "invalid" and isinstance(field, forms.DecimalField):
        return "not a number."
    if error.code == "invalid" and isinstance(field, forms.DateField):
        return "not a date."
    if error.code in ("max_value", "min_value"):
        limit = error.params["limit_value"]
        limit = f"{limit:,.0f}" if float(limit).is_integer() else f"{limit:,}"
        return f"the {'most' if error.code == 'max_value' else 'least'} it may be is {limit}."
    return " ".join(error.messages)
