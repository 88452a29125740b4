"""The scoring modes, one module each, looked up by name.

Forms, views, the command line and the engine ask the registry rather than
naming modes: adding a mode is one new module here (a ScoringMode and its
tests), its line below, and its value in ScoringRun.Mode (the database's
choices, which the registry must match: tests/test_modes.py checks it).
"""

from django.core.exceptions import ValidationError

from . import estimate, finetune, full, groups, incremental, memory
from .base import CallSpec, Plan, ScoringMode

__all__ = ["CallSpec", "Plan", "ScoringMode", "all", "get", "names"]

_MODES = {m.name: m for m in (full.MODE, memory.MODE, incremental.MODE, finetune.MODE, estimate.MODE, groups.MODE)}


def get(name):
    """The mode of this name; ValidationError on "mode" for an unknown one."""
    try:
        return _MODES[name]
    except (KeyError, TypeError):
        raise ValidationError({"mode": f"unknown mode {name!r}; one of {', '.join(_MODES)}"}) from None


def all():  # the registry's own vocabulary (modes.all()), shadowing the builtin here only
    """Every mode, in the order the pages list them."""
    return list(_MODES.values())


def names():
    """The modes' names as plain strings (what the command line and URLs take)."""
    return [str(name) for name in _MODES]
