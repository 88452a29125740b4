"""What a saved form changed, old → new, for the activity log."""

from django.utils.text import Truncator

# Fields whose values never reach the log: named only ("changed").
SECRET_FIELDS = {"api_key", "clear_api_key", "password"}


def changes(form):
    """{field: "old → new"} of a bound, valid ModelForm's changed fields (its
    initial values against what it cleaned); a secret field says only "changed"."""
    found = {}
    for name in form.changed_data:
        if name in SECRET_FIELDS:
            found[name] = "changed"
            continue
        old, new = form.initial.get(name), form.cleaned_data.get(name)
        found[name] = f"{_shown(old)} → {_shown(new)}"
    return found


def _shown(value):
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return Truncator(" ".join(str(value).split())).chars(80)
