"""One memory: its importance over the responses that follow it, as the reference scores it."""

from django import forms
from django.core.exceptions import ValidationError
from django.template.defaultfilters import pluralize

from scoring import maths
from scoring.context import memory_keys
from scoring.models import CellScore, ScoreCall
from scoring.models.runs import Mode

from .base import CallSpec, Filter, ParamsForm, Plan, ScoringMode, memories

# The reference scores one memory over the 50 responses after it appears.
RESPONSE_WINDOW = 50


class MemoryParams(ParamsForm):
    key = forms.CharField(
        label="Memory key", required=False, max_length=300,
        help_text="memory mode: the memory key to score",
    )

    def clean_key(self):
        if not self.cleaned_data.get("key"):
            raise ValidationError("Choose the memory to score.", code="required")
        return self.cleaned_data["key"]


class MemoryMode(ScoringMode):
    name = Mode.MEMORY
    Params = MemoryParams
    has_heatmap = True
    result_labels = {"key": "Memory", "importance": "Importance (nats)", "responses": "Responses scored"}
    # Says that its context starts at the memory: its deltas are not a full matrix's.
    detail_template = "scoring/_memory_detail.html"

    def page_form(self, snapshot, data=None):
        form = super().page_form(snapshot, data)
        # The page offers the snapshot's keys; the command line takes any text.
        choices = [("", "---------")] + [(k, k) for k in memory_keys(snapshot)]
        form.fields["key"].widget = forms.Select(choices=choices)
        return form

    def page_note(self, snapshot):
        return ("Two calls, over the conversation from the memory's first appearance to the 50th response after "
                "it (as the original tool scores one memory): its deltas are not a full matrix's, whose context "
                "keeps everything before the memory.")

    def plan(self, snapshot, outline, params):
        key = params["key"]
        start = outline.first_position(key, identity_first=False)
        if start is None:
            raise ValidationError({"key": f"no memory with key {key!r} in this snapshot"})
        end = outline.window_end(start, RESPONSE_WINDOW)
        if not outline.responses_in(start, end):
            raise ValidationError({"key": f"no assistant response follows memory {key!r}"})
        memory = memories(snapshot.agent, [key])[key]
        calls = [
            CallSpec(Filter.NONE, start, end),
            CallSpec(Filter.SKIP_KEY, start, end, memory=memory, baseline=0),
        ]
        return Plan(params, calls, {})

    def summary(self, run):
        cells = CellScore.objects.filter(run=run)
        deltas = list(cells.filter(failed=False).values_list("delta", flat=True))
        ok = ScoreCall.objects.filter(run=run, status=ScoreCall.Status.DONE).count() == 2
        return {
            "key": run.params["key"],
            "importance": maths.memory_importance(deltas) if ok else None,
            "responses": cells.count(),
        }

    def report(self, run, write):
        result = run.result or {}
        if result.get("importance") is not None:
            n = result["responses"]
            write(f"importance of {result['key']}: {result['importance']:.3f} over {n} response{pluralize(n)}")


MODE = MemoryMode()
