"""Stored values in words for the pages: a run's parameters and findings, an
activity entry's details. No Python repr, raw field name or float with
sixteen digits reaches a page."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateformat import format as date_format

from scoring import modes

# Lists longer than this are shown as their length ("12 items").
LIST_SHOWN = 6
# Keys of activity details and their words, where replacing "_" is not enough.
DETAIL_LABELS = {
    "until": "held until",
    "divergence": "divergence (nats)",
    "original_tokens": "original tokens",
    "edited_tokens": "edited tokens",
}


def humanise(name):
    """A stored key as words: "min_divergence" -> "min divergence"."""
    return str(name).replace("_", " ").strip()


def value_text(value):
    """One stored value in words: numbers rounded, flags as yes/no, times
    readable, lists and mappings spelled out (nested ones too)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{humanise(k)} {value_text(v)}" for k, v in value.items()) or "—"
    if isinstance(value, (list, tuple)):
        if len(value) > LIST_SHOWN:
            return f"{len(value)} items"
        return ", ".join(value_text(v) for v in value) or "none"
    return _time_text(value) or str(value)


def _time_text(value):
    """An ISO timestamp (as the activity log stores one) in local time, or None."""
    if not isinstance(value, str) or len(value) < 19 or value[4:5] != "-" or value[10:11] != "T":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return date_format(moment, "Y-m-d H:i:s")


def in_form_order(mode, params):
    """A run's parameters in the order its mode's form lists them: PostgreSQL's
    jsonb does not keep the order they were stored in."""
    order = {name: i for i, name in enumerate(mode.Params.base_fields)}
    return dict(sorted((params or {}).items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


def run_params(run, mode=None):
    """The run's parameters as its mode labels them, [(label, text)]."""
    mode = mode or modes.get(run.mode)
    return [(mode.label(name), param_text(mode, name, value))
            for name, value in in_form_order(mode, run.params).items()]


def lowered(label):
    """A label inside a sentence: its first letter lower case ("ablations (K)", not "(k)")."""
    return label[:1].lower() + label[1:]


def param_text(mode, name, value):
    """A run parameter in words; an identifier (an estimate's seed, a run id)
    as it is, without thousands separators."""
    if name in mode.identifiers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value_text(value)


def run_findings(run):
    """What the run found, as its mode labels it (lists shown as their length)."""
    result = run.result if isinstance(run.result, dict) else {}
    mode = modes.get(run.mode)
    return [
        (mode.label(name), value_text(len(value) if isinstance(value, list) else value))
        for name, value in result.items()
        if not (name in mode.unshown_when_none and not value)
    ]


def activity_details(entry):
    """An activity entry's details as [(label, text)]; a run's parameters are
    named by its mode when the entry says which."""
    detail = entry.detail if isinstance(entry.detail, dict) else {}
    mode = _mode(detail.get("mode"))
    items = []
    for name, value in detail.items():
        if value in ("", None, [], {}):
            continue  # an empty comment says nothing ("comment: ·" did)
        if name == "params" and mode is not None and isinstance(value, dict):
            text = ", ".join(f"{lowered(mode.label(k))} {param_text(mode, k, v)}"
                             for k, v in in_form_order(mode, value).items()) or "—"
        elif name == "mode" and mode is not None:
            text = mode.name.label
        else:
            text = value_text(value)
        items.append((DETAIL_LABELS.get(name, humanise(name)), text))
    return items


def _mode(name):
    try:
        return modes.get(name) if name else None
    except ValidationError:  # a mode since removed: its keys stay as stored
        return None
