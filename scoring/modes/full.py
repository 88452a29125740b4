"""Full matrix: every memory left out in turn, over the whole conversation.

One baseline call, then one call per memory key compared with it; the cells
are the whole result (its heatmap is the product's main page).
"""

from django.core.exceptions import ValidationError

from scoring.models import CellScore, ScoreCall
from scoring.models.runs import Mode

from .base import CallSpec, Filter, Plan, ScoringMode, memories


class FullMode(ScoringMode):
    name = Mode.FULL
    has_heatmap = True
    # Packing a million cells takes seconds: do it as the run ends, not on the first view.
    warm_heatmap = True
    result_labels = {"memories": "Memories scored", "cells": "Cells", "responses": "Responses"}

    def plan(self, snapshot, outline, params):
        keys = outline.keys()
        if not keys:
            raise ValidationError({"snapshot": "this snapshot has no memories to score"})
        end = len(outline.entries)
        if not outline.responses_in(0, end):
            raise ValidationError({"snapshot": "this snapshot has no assistant responses to score"})
        found = memories(snapshot.agent, keys)
        calls = [CallSpec(Filter.NONE, 0, end)]
        calls += [CallSpec(Filter.SKIP_KEY, 0, end, memory=found[k], baseline=0) for k in keys]
        return Plan(params, calls, {})

    def summary(self, run):
        calls = ScoreCall.objects.filter(run=run, filter=Filter.SKIP_KEY)
        return {"memories": calls.count(), "cells": CellScore.objects.filter(run=run).count()}

    def report(self, run, write):
        result = run.result or {}
        if "memories" in result:
            write(f"{result['memories']} memories, {result['cells']} cells")


MODE = FullMode()
