"""Starting a run from a snapshot's page: the chosen mode's parameters."""

import json
import re

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from scoring import modes
from scoring.context import Outline
from scoring.models.runs import Mode
from scoring.modes.groups import DEFAULT_SEPARATOR


def page_help(text):
    """A parameter's help (written for the command line) as the start form's
    fieldset of its mode shows it: without "groups mode: " before it (the
    fieldset names the mode) and the "[default]" (the field shows it)."""
    text = re.sub(r"^(full|memory|incremental|finetune|estimate|groups)( mode)?: ", "", str(text))
    text = re.sub(r"\s*\[[^\]]*\]", "", text).strip()
    return text[:1].upper() + text[1:]


class StartRunForm(forms.Form):
    """Start a scoring run on one snapshot; `params` is what engine.start_run takes.

    The chosen mode's parameter form (scoring.modes, as its page_form) validates
    its fields and fills blank ones with the agent's defaults; other modes'
    fields are ignored. The page shows every mode's form (param_forms), each
    in its own fieldset: static/memscore/forms.js shows only the chosen one's.
    Sent back with errors, the page keeps what was sent, in every fieldset,
    and the chosen mode's errors beside their fields (error_summary lists
    them by their labels).
    """

    mode = forms.ChoiceField(
        choices=lambda: [(m.name, m.name.label) for m in modes.all()], initial=Mode.FULL,
        widget=forms.Select(attrs={"data-run-mode": ""}),
    )

    def __init__(self, *args, snapshot, **kwargs):
        self.snapshot = snapshot
        super().__init__(*args, **kwargs)
        self._params = {}
        self._param_forms = None

    def chosen_mode(self):
        """The mode's name the page shows as chosen (what was sent, else the default)."""
        if self.is_bound and self.data.get("mode") in modes.names():
            return self.data["mode"]
        return str(self.fields["mode"].initial)

    def param_forms(self):
        """[(mode, its parameter form)] for the page, modes without parameters
        left out. Bound: the chosen mode's form is bound to what was sent (its
        errors beside its fields); the others show what was sent, unvalidated."""
        if self._param_forms is None:
            chosen, found = self.chosen_mode(), []
            for mode in modes.all():
                if self.is_bound and mode.name == chosen:
                    form = mode.page_form(self.snapshot, self.data)
                else:
                    form = mode.page_form(self.snapshot)
                    if self.is_bound:
                        form.initial.update({name: self.data.get(name) for name in form.fields if name in self.data})
                if form.fields:
                    for field in form.fields.values():
                        field.help_text = page_help(field.help_text)
                    form.page_note = mode.page_note(self.snapshot)
                    if mode.name == Mode.GROUPS and "separator" in form.fields:
                        self._count_groups_as_typed(form.fields["separator"])
                    found.append((mode, form))
            self._param_forms = found
        return self._param_forms

    def _count_groups_as_typed(self, field):
        """The groups mode's note counts the groups by the default separator
        (modes.groups page_note): the snapshot's keys go with the separator's
        field, so static/memscore/forms.js counts them by the separator as
        typed (the run's own count: modes.groups.group_keys, by maths.group_of)."""
        field.widget.attrs.update({
            "data-group-keys": json.dumps(Outline(self.snapshot).keys()),
            "data-group-default": DEFAULT_SEPARATOR,
        })

    def _chosen_form(self):
        return next((form for mode, form in self.param_forms() if mode.name == self.chosen_mode()), None)

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("mode"):
            return cleaned
        params = self._chosen_form()
        if params is None:  # a mode without parameters
            self._params = {}
        elif params.is_valid():
            self._params = dict(params.cleaned_data)
        else:
            # Also on this form by the parameter's name (errors["key"]).
            for name, errors in params.errors.as_data().items():
                self._errors.setdefault(name, self.error_class()).extend(errors)
        return cleaned

    def add_plan_error(self, error):
        """A ValidationError from planning the run (engine.start_run): beside
        the field it names when the page has it, else above the form."""
        params = self._chosen_form()
        errors = error.message_dict if hasattr(error, "error_dict") else {NON_FIELD_ERRORS: error.messages}
        for name, messages in errors.items():
            for message in messages:
                if params is not None and name in params.fields:
                    params.add_error(name, message)
                    self._errors.setdefault(name, self.error_class()).append(message)
                elif name in self.fields:
                    self.add_error(name, message)
                else:
                    label = "" if name == NON_FIELD_ERRORS else f"{modes.get(self.chosen_mode()).label(name)}: "
                    self.add_error(None, f"{label}{message}")

    def error_summary(self):
        """[(label, field id or None, message)] of every error, as the page names them."""
        summary = [(None, None, message) for message in self.non_field_errors()]
        if "mode" in self.errors:
            summary += [(self["mode"].label, self["mode"].id_for_label, m) for m in self.errors["mode"]]
        params = self._chosen_form()
        if params is not None and params.is_bound:
            for field in params:
                summary += [(str(field.label), field.id_for_label, message) for message in field.errors]
        return summary

    @property
    def params(self):
        """The run's parameters for engine.start_run (only those of its mode)."""
        return dict(self._params)
