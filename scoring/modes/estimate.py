"""Estimate: every cell fitted to K random ablations (a sparse linear surrogate, issue 11).

One baseline call, then K calls each with a random half of the memory keys
left out (skip_keys; each key kept with probability ½, drawn with the run's
seed; the removed keys are stored on each call, so the masks are recorded
with the run). When the run ends, each response's scores are fitted on which
memories were present (scoring/surrogate.py, LASSO), using only memories
before the response: a later memory's cell is exactly 0 and "unaffected".

The cells are ESTIMATES: the run's mode says so, and every page and export
that shows them labels them (never mixed silently with an exact matrix's).
The run's result holds K, the seed and each response's held-out R².
"""

import secrets

import numpy as np
from django.core.exceptions import ValidationError

from scoring import surrogate
from scoring.context import Outline
from scoring.models import CellScore, Memory, ScoreCall
from scoring.models.runs import Mode

from .base import CallSpec, Filter, ParamsForm, Plan, ScoringMode, memories, whole_number

DEFAULT_ABLATIONS = 64
# Fewer calls leave too few rows for the cross-validated fit.
MIN_ABLATIONS = 8


class EstimateParams(ParamsForm):
    ablations = whole_number(
        MIN_ABLATIONS, 10_000, label="Ablations (K)",
        help_text=f"estimate mode: random ablations to fit [{DEFAULT_ABLATIONS}]; with N memories the "
                  "exact full matrix takes N+1 calls, so when N+1 ≤ K the exact matrix is cheaper",
    )
    seed = whole_number(0, label="Seed", help_text="estimate mode: the ablations' random seed [drawn, then recorded]")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ablations"].initial = DEFAULT_ABLATIONS


def ablation_masks(n_keys, ablations, seed):
    """K×N booleans, True where a key is kept (probability ½), from `seed`."""
    return np.random.default_rng(seed).random((ablations, n_keys)) < 0.5


class EstimateMode(ScoringMode):
    name = Mode.ESTIMATE
    Params = EstimateParams
    has_heatmap = True
    warm_heatmap = True
    result_labels = {
        "ablations": "Ablations (K)", "memories": "Memories estimated", "cells": "Cells (estimates)",
        "calls_used": "Calls fitted (baseline and ablations)", "r2_median": "Median held-out R²",
        "exact_calls": "Exact matrix calls (N+1)", "estimate": "Cells are estimates (fitted, not measured)",
        "fit_r2": "Responses with a held-out R² (each in the JSON export)",
    }

    def page_form(self, snapshot):
        form = super().page_form(snapshot)
        n = len(Outline(snapshot).keys())
        if n + 1 <= DEFAULT_ABLATIONS:
            form.fields["ablations"].help_text = (
                f"{n} memories: the exact full matrix takes {n + 1} calls, fewer than "
                f"{DEFAULT_ABLATIONS} ablations; prefer it unless you are comparing"
            )
        return form

    def plan(self, snapshot, outline, params):
        keys = outline.keys()
        if not keys:
            raise ValidationError({"snapshot": "this snapshot has no memories to score"})
        end = len(outline.entries)
        if not outline.responses_in(0, end):
            raise ValidationError({"snapshot": "this snapshot has no assistant responses to score"})
        params = {**params, "seed": params.get("seed") if params.get("seed") is not None else secrets.randbelow(2**31)}
        memories(snapshot.agent, keys)
        masks = ablation_masks(len(keys), params["ablations"], params["seed"])
        calls = [CallSpec(Filter.NONE, 0, end)]
        for kept in masks:
            removed = tuple(k for k, keep in zip(keys, kept) if not keep)
            calls.append(CallSpec(Filter.SKIP_KEYS, 0, end, baseline=0, removed_keys=removed))
        notes = {"exact_calls": len(keys) + 1, "ablations": params["ablations"], "estimate": True}
        return Plan(params, calls, notes)

    def summary(self, run):
        outline = Outline(run.snapshot)
        keys = outline.keys()
        responses = [e for e in outline.entries if e.is_response]
        ids = dict(Memory.objects.filter(agent=run.agent, key__in=keys).values_list("key", "pk"))
        calls = list(ScoreCall.objects.filter(run=run, status=ScoreCall.Status.DONE).order_by("seq"))
        rows, scores = [], []
        for call in calls:
            removed = set(call.removed_keys) if call.filter == Filter.SKIP_KEYS else set()
            rows.append([k not in removed for k in keys])
            scores.append(call.result)
        has_baseline = any(c.filter == Filter.NONE for c in calls)
        if not has_baseline or len(rows) < MIN_ABLATIONS // 2:
            cells = [CellScore(run=run, memory_id=ids[k], response_id=r.node_id, delta=None, failed=True,
                               state=CellScore.State.FAILED) for k in keys for r in responses]
            CellScore.objects.bulk_create(cells, ignore_conflicts=True, batch_size=5000)
            return {"calls_used": len(rows), "memories": len(keys), "cells": len(cells), "fit_r2": []}
        position = [outline.first_position(k) for k in keys]
        allowed = np.array([[p <= r.index for r in responses] for p in position], dtype=bool).reshape(
            len(keys), len(responses))
        effects, r2 = surrogate.fit(np.array(rows, dtype=float), np.array(scores, dtype=float), allowed,
                                    seed=run.params.get("seed", 0))
        cells = [
            CellScore(run=run, memory_id=ids[k], response_id=r.node_id, delta=float(effects[i, j]),
                      state=CellScore.State.SCORED)
            if allowed[i, j] else
            CellScore(run=run, memory_id=ids[k], response_id=r.node_id, delta=0.0, state=CellScore.State.UNAFFECTED)
            for i, k in enumerate(keys) for j, r in enumerate(responses)
        ]
        CellScore.objects.bulk_create(cells, ignore_conflicts=True, batch_size=5000)
        fitted = [v for v in r2 if v is not None]
        return {
            "calls_used": len(rows), "memories": len(keys), "cells": len(cells),
            "r2_median": float(np.median(fitted)) if fitted else None,
            # Per response, in conversation order (None: its score never changed).
            "fit_r2": r2,
        }

    def report(self, run, write):
        result = run.result or {}
        if "cells" in result:
            median = result.get("r2_median")
            write(f"ESTIMATE from {result.get('calls_used')} calls (K={run.params.get('ablations')}, "
                  f"seed {run.params.get('seed')}; exact would take {result.get('exact_calls')}): "
                  f"{result['memories']} memories, {result['cells']} cells, median held-out R² "
                  f"{'n/a' if median is None else f'{median:.3f}'}")


MODE = EstimateMode()
