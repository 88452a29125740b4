"""What every scoring mode is made of, and the pieces of planning they share.

A mode is a ScoringMode: its parameter form (a Django form whose blank
fields take the agent's defaults), its plan (the ScoreCall rows of a run),
what a finished pair of calls leaves behind beyond the common cells, its
summary for ScoringRun.result, and its lines in the command line's report.
"""

from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError

from scoring.models import Memory, ScoreCall

Filter = ScoreCall.Filter


@dataclass
class CallSpec:
    filter: str
    range_start: int
    range_end: int
    memory: Memory = None
    # Index in the plan of the call this one is compared with (None: a baseline).
    baseline: int = None
    # The keys a skip_keys call leaves out (an estimate's ablation).
    removed_keys: tuple = ()


@dataclass
class Plan:
    params: dict
    calls: list
    # Written to ScoringRun.result up front (e.g. what incremental skipped).
    notes: dict


def memories(agent, keys):
    """{key: Memory}, creating rows the import has not (older snapshots)."""
    found = {m.key: m for m in Memory.objects.filter(agent=agent, key__in=keys)}
    missing = [k for k in keys if k not in found]
    if missing:
        Memory.objects.bulk_create([Memory(agent=agent, key=k) for k in missing], ignore_conflicts=True)
        found = {m.key: m for m in Memory.objects.filter(agent=agent, key__in=keys)}
    return found


def whole_conversation(outline):
    """(memory keys, end) of a mode that scores every memory over the whole
    conversation; ValidationError on "snapshot" when there is nothing to score."""
    keys = outline.keys()
    if not keys:
        raise ValidationError({"snapshot": "this snapshot has no memories to score"})
    end = len(outline.entries)
    if not outline.responses_in(0, end):
        raise ValidationError({"snapshot": "this snapshot has no assistant responses to score"})
    return keys, end


# --- parameters -----------------------------------------------------------------


# The largest whole number a parameter may be: what the agent's own fields
# (PositiveIntegerField) hold on every database, and small enough that a
# count of seconds stays a date (a bigger max_age overflowed timedelta).
MAX_WHOLE = 2**31 - 1
LIMIT_MESSAGES = {"min_value": "must be at least %(limit_value)s", "max_value": "must be at most %(limit_value)s"}


def whole_number(minimum, maximum=MAX_WHOLE, **kwargs):
    return forms.IntegerField(
        required=False, min_value=minimum, max_value=maximum,
        error_messages={"invalid": "must be a whole number", **LIMIT_MESSAGES},
        **kwargs,
    )


def number(minimum, maximum=None, **kwargs):
    # FloatField itself refuses inf and NaN.
    return forms.FloatField(
        required=False, min_value=minimum, max_value=maximum,
        error_messages={"invalid": "must be a number", **LIMIT_MESSAGES},
        **kwargs,
    )


class FlagInput(forms.CheckboxInput):
    """A checkbox that hands its field the value as sent: the command line and
    the API send strings, and "maybe" must be refused rather than read as on.
    The page sends a hidden "0" before the box (the last value wins), so an
    unticked box reads as off, not as "not given" (the default)."""

    def __init__(self, attrs=None):
        # Ticked again when the page comes back with what was sent ("on", not "0").
        super().__init__(attrs, check_test=lambda v: v is True or str(v).lower() in FlagField.TRUE)

    def value_from_datadict(self, data, files, name):
        return data.get(name)


class FlagField(forms.Field):
    widget = FlagInput
    TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def to_python(self, value):
        if value is None or value == "" or isinstance(value, bool):
            return value if isinstance(value, bool) else None
        if str(value).lower() in self.TRUE:
            return True
        if str(value).lower() in self.FALSE:
            return False
        raise ValidationError("must be true or false, not %(value)r", code="invalid", params={"value": value})


class ParamsForm(forms.Form):
    """A mode's parameters. A blank field takes the agent's default, named
    in `agent_defaults` ({field: Agent attribute}); the page shows it as the
    field's initial value."""

    agent_defaults = {}

    def __init__(self, data=None, *args, agent, **kwargs):
        super().__init__(data, *args, **kwargs)
        for name, attribute in self.agent_defaults.items():
            self.fields[name].initial = getattr(agent, attribute)

    def clean(self):
        cleaned = super().clean()
        for name, field in self.fields.items():
            if cleaned.get(name) is None and name not in self.errors:
                cleaned[name] = field.initial
        return cleaned


class NoParams(ParamsForm):
    pass


# --- modes ----------------------------------------------------------------------


class ScoringMode:
    """One scoring mode. Subclasses set `name` (a ScoringRun.Mode value) and
    Params, and write plan(); the rest has defaults for a mode that only
    stores cells."""

    name = None
    Params = NoParams
    # Words for the keys of its summary (ScoringRun.result) on the pages; a
    # parameter is named by its field's label.
    result_labels = {}
    # Summary keys the run page leaves out when they count nothing (what failed).
    unshown_when_none = ()
    # Parameters that name something (a seed, a run): shown as they are, never
    # as a count with thousands separators.
    identifiers = ()
    # Whether a heatmap can show its cells, and whether it is packed into the
    # cache as the run ends (worth it only for big matrices).
    has_heatmap = False
    warm_heatmap = False
    # A template the run page includes below its progress (the mode's own
    # block: findings, follow-up actions); None: the page shows nothing more.
    detail_template = None

    def clean_params(self, agent, params):
        """Validated parameters with the agent's defaults filled in; the
        ValidationError names the bad field. Blank values mean "the default"."""
        params = params or {}
        given = {k: v for k, v in params.items() if v is not None and v != ""}
        unknown = sorted(set(given) - set(self.Params.base_fields))
        if unknown:
            raise ValidationError({name: f"not a parameter of the {self.name} mode" for name in unknown})
        # A known parameter given blank reaches its form too (blank: the
        # default, unless the field refuses it, as the groups separator does).
        form = self.Params({k: v for k, v in params.items() if k in self.Params.base_fields}, agent=agent)
        if not form.is_valid():
            raise ValidationError(form.errors.as_data())
        return dict(form.cleaned_data)

    def label(self, name):
        """Words for a key of this mode's parameters or summary."""
        if name in self.result_labels:
            return self.result_labels[name]
        field = self.Params.base_fields.get(name)
        if field is not None and field.label:
            return str(field.label)
        return str(name).replace("_", " ").capitalize()

    def detail_context(self, run):
        """What detail_template needs beyond the run page's own context (the
        page passes it as `detail`)."""
        return {}

    def page_form(self, snapshot, data=None):
        """The parameter form the snapshot page shows: unbound, or bound to
        what the page sent (then it validates what the page can set)."""
        return self.Params(data, agent=snapshot.agent)

    def page_note(self, snapshot):
        """A sentence the start form shows above the mode's fields (what it
        costs on this snapshot, when it pays off), or ""."""
        return ""

    def total_is_provisional(self, run):
        """Whether the run may still add calls (its calls_total may grow)."""
        return False

    def plan(self, snapshot, outline, params):
        raise NotImplementedError

    def settle(self, run, call, baseline, tokens):
        """What a pair whose two calls succeeded leaves beyond its cells;
        returns the Followups it asks for, or None."""
        return None

    def summary(self, run):
        """The mode's findings, merged into ScoringRun.result as the run ends."""
        return {}

    def report(self, run, write):
        """The findings in words, for the command line."""
