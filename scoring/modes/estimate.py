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

Its page offers to score the top N memories exactly (a full run restricted to
their keys, N+1 calls, naming this run in `source_run`); that run's page then
compares the two (exact_check).
"""

import secrets
from collections import defaultdict

import numpy as np
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.template.defaultfilters import pluralize

from scoring import maths, surrogate
from scoring.context import Outline
from scoring.models import CellScore, Memory, ScoreCall, ScoringRun
from scoring.models.runs import CellState, Mode, RunStatus

from .base import CallSpec, Filter, ParamsForm, Plan, ScoringMode, memories, whole_conversation, whole_number

DEFAULT_ABLATIONS = 64
# Fewer calls leave too few rows for the cross-validated fit.
MIN_ABLATIONS = 8
# What an estimate that too few calls answered says instead of its figures.
NOT_FITTED = f"fewer than {MIN_ABLATIONS // 2} calls answered, too few to fit: no cell is estimated"
# How many top memories the page offers to score exactly, and lists.
DEFAULT_TOP = 10
FINISHED = (RunStatus.SUCCEEDED, RunStatus.PARTIAL)


def default_ablations(n_keys):
    """K when none is given: half the memories (the exact matrix takes N+1
    calls), at least MIN_ABLATIONS, at most DEFAULT_ABLATIONS."""
    return min(DEFAULT_ABLATIONS, max(MIN_ABLATIONS, n_keys // 2))


class EstimateParams(ParamsForm):
    ablations = whole_number(
        MIN_ABLATIONS, 10_000, label="Ablations (K)",
        help_text=f"estimate mode: random ablations to fit (K+1 calls) [half the N memories, {MIN_ABLATIONS} to "
                  f"{DEFAULT_ABLATIONS}]; the exact full matrix takes N+1 calls, so with K ≥ N it is cheaper",
    )
    seed = whole_number(
        0, label="Seed", help_text="estimate mode: the ablations' random seed; blank: drawn, then recorded"
    )
    # Set by the page's form (page_form): the snapshot's exact matrix calls,
    # N+1; the page then refuses an estimate that costs as much or more.
    exact_calls = None

    def clean_ablations(self):
        given = self.cleaned_data.get("ablations")
        if self.exact_calls is None:
            return given
        n = self.exact_calls - 1
        k = default_ablations(n) if given is None else given
        if k >= n:
            raise ValidationError(
                "%(k)s ablations make %(calls)s calls, no fewer than the %(exact)s of the exact full matrix on "
                "this snapshot's %(n)s memories: start a full matrix instead (exact, and cheaper)"
                + ("" if n > MIN_ABLATIONS else "; an estimate takes at least %(min)s ablations"),
                code="costlier_than_exact",
                params={"k": k, "calls": k + 1, "exact": n + 1, "n": n, "min": MIN_ABLATIONS},
            )
        return given


def ablation_masks(n_keys, ablations, seed):
    """K×N booleans, True where a key is kept (probability ½), from `seed`."""
    return np.random.default_rng(seed).random((ablations, n_keys)) < 0.5


class EstimateMode(ScoringMode):
    name = Mode.ESTIMATE
    Params = EstimateParams
    has_heatmap = True
    warm_heatmap = True
    # Its top memories, the button that scores them exactly, and those exact runs.
    detail_template = "scoring/_estimate_detail.html"
    identifiers = ("seed",)
    result_labels = {
        "ablations": "Ablations (K)", "memories": "Memories estimated", "cells": "Cells (estimates)",
        "calls_used": "Calls fitted (baseline and ablations)", "r2_median": "Median held-out R²",
        "exact_calls": "Exact matrix calls (N+1)", "estimate": "Cells are estimates (fitted, not measured)",
        "fit_r2": "Responses with a held-out R² (each in the JSON export)",
        "not_fitted": "No estimate", "failed_cells": "Cells failed",
    }

    def page_form(self, snapshot, data=None):
        form = super().page_form(snapshot, data)
        n = len(Outline(snapshot).keys())
        form.exact_calls = n + 1
        k = default_ablations(n)
        form.fields["ablations"].initial = k
        form.fields["ablations"].help_text = (
            f"Random ablations to fit: K+1 calls. The exact full matrix takes {n + 1} calls on these {n} "
            f"memories, so an estimate pays off only with K well below {n}"
            + (f" (default {k}: half the memories, at most {DEFAULT_ABLATIONS})" if k < n else "")
        )
        return form

    def page_note(self, snapshot):
        n = len(Outline(snapshot).keys())
        k = default_ablations(n)
        if k >= n:
            return (f"Not worth it here: {n} memories take {n + 1} calls as an exact full matrix, no more than "
                    f"the smallest estimate ({MIN_ABLATIONS} ablations, {MIN_ABLATIONS + 1} calls).")
        return (f"Fitted to K random ablations, not measured: {k + 1} calls with K = {k}, against the exact "
                f"full matrix's {n + 1}. Worth it for snapshots with many memories.")

    def plan(self, snapshot, outline, params):
        keys, end = whole_conversation(outline)
        if params.get("ablations") is None:
            params = {**params, "ablations": default_ablations(len(keys))}
        params = {**params, "seed": params.get("seed") if params.get("seed") is not None else secrets.randbelow(2**31)}
        memories(snapshot.agent, keys)
        masks = ablation_masks(len(keys), params["ablations"], params["seed"])
        calls = [CallSpec(Filter.NONE, 0, end)]
        for kept in masks:
            removed = tuple(k for k, keep in zip(keys, kept) if not keep)
            calls.append(CallSpec(Filter.SKIP_KEYS, 0, end, baseline=0, removed_keys=removed))
        # The run's page says plainly when the estimate costs more calls than the exact matrix.
        notes = {"exact_calls": len(keys) + 1, "ablations": params["ablations"], "estimate": True}
        return Plan(params, calls, notes)

    def detail_context(self, run):
        if run.status not in FINISHED:
            return {}
        ranking = importance_ranking(run)
        checks = ScoringRun.objects.filter(mode=Mode.FULL, params__source_run=run.pk).order_by("-id")
        return {
            "top": ranking[:DEFAULT_TOP],
            "memories": len(ranking),
            "default_top": min(DEFAULT_TOP, len(ranking)),
            # only_keys as the run pages name it (a template's params.keys is dict.keys()).
            "checks": [_with_keys(check) for check in checks[:20]],
        }

    def summary(self, run):
        outline = Outline(run.snapshot)
        keys = outline.keys()
        responses = [e for e in outline.entries if e.is_response]
        ids = dict(Memory.objects.filter(agent=run.agent, key__in=keys).values_list("key", "pk"))
        calls = list(ScoreCall.objects.filter(run=run, status=ScoreCall.Status.DONE).order_by("seq"))
        rows, scores = [], []
        baseline = next((c for c in calls if c.filter == Filter.NONE), None)
        for call in calls:
            removed = set(call.removed_keys) if call.filter == Filter.SKIP_KEYS else set()
            rows.append([k not in removed for k in keys])
            if baseline is not None:
                # None: a response before the first key left out, scored as in the baseline (causal windows).
                scores.append([b if w is None else w for b, w in zip(baseline.result, call.result)])
        position = [outline.first_position(k) for k in keys]
        # Whether memory i can change response j at all (it comes before it).
        allowed = np.array([[p <= r.index for r in responses] for p in position], dtype=bool).reshape(
            len(keys), len(responses))
        if baseline is None or len(rows) < MIN_ABLATIONS // 2:
            # Too few answers to fit: no estimate, and nothing counted as one.
            # The cells a memory can change are failed; those before it are
            # exactly 0 all the same.
            cells = [
                CellScore.failed_row(run.pk, ids[k], r.node_id) if allowed[i, j]
                else CellScore.unaffected_row(run.pk, ids[k], r.node_id)
                for i, k in enumerate(keys) for j, r in enumerate(responses)
            ]
            CellScore.insert_rows(cells)
            return {"calls_used": len(rows), "memories": 0, "cells": 0, "not_fitted": NOT_FITTED,
                    "failed_cells": int(allowed.sum())}
        effects, r2 = surrogate.fit(np.array(rows, dtype=float), np.array(scores, dtype=float), allowed,
                                    seed=run.params.get("seed", 0))
        cells = [
            CellScore.scored_row(run.pk, ids[k], r.node_id, float(effects[i, j])) if allowed[i, j]
            else CellScore.unaffected_row(run.pk, ids[k], r.node_id)
            for i, k in enumerate(keys) for j, r in enumerate(responses)
        ]
        CellScore.insert_rows(cells)
        fitted = [v for v in r2 if v is not None]
        return {
            "calls_used": len(rows), "memories": len(keys), "cells": len(cells),
            "r2_median": float(np.median(fitted)) if fitted else None,
            # Per response, in conversation order (None: its score never changed).
            "fit_r2": r2,
        }

    def report(self, run, write):
        result = run.result or {}
        if result.get("not_fitted"):
            write(f"NO ESTIMATE: {result['not_fitted']} ({result.get('calls_used', 0)} answered)")
        elif "cells" in result:
            median = result.get("r2_median")
            write(f"ESTIMATE from {result.get('calls_used')} calls (K={run.params.get('ablations')}, "
                  f"seed {run.params.get('seed')}; exact would take {result.get('exact_calls')}): "
                  f"{result['memories']} memor{pluralize(result['memories'], 'y,ies')}, "
                  f"{result['cells']} cell{pluralize(result['cells'])}, median held-out R² "
                  f"{'n/a' if median is None else f'{median:.3f}'}")
        exact = result.get("exact_calls")
        if exact and run.calls_total > exact:
            write(f"WARNING: this estimate made {run.calls_total} calls, more than the exact full matrix's "
                  f"{exact}: the full matrix would have been exact and cheaper")


# --- estimate against exact ------------------------------------------------------------


def _with_keys(run):
    run.only_keys = run.params.get("keys") or []
    return run


def importance_ranking(run):
    """[(key, importance)] of every memory of the run, most important first:
    maths.memory_importance over its scored cells (the memories page's and
    bench/estimate_vs_exact.py's ranking); ties in key order. A memory none of
    whose cells was scored (all failed) is left out, never ranked as 0."""
    # Not ranked: a memory whose importance is unknown (maths.importance_unknown), never as 0.
    counts = CellScore.objects.filter(run=run).order_by().values("memory__key").annotate(
        n_failed=Count("pk", filter=Q(failed=True)), n_measured=Count("pk", filter=Q(state=CellState.SCORED)),
        n_known=Count("pk", filter=Q(failed=False)))
    keys = {c["memory__key"] for c in counts
            if c["n_known"] and not maths.importance_unknown(c["n_failed"], c["n_measured"])}
    deltas = defaultdict(list)
    # Only positive deltas add to memory_importance: the rest need not be read.
    for key, delta in CellScore.objects.filter(run=run, failed=False, delta__gt=0).values_list("memory__key", "delta"):
        deltas[key].append(delta)
    return sorted(((k, maths.memory_importance(deltas[k])) for k in set(keys)), key=lambda kv: (-kv[1], kv[0]))


def top_keys(run, n):
    """The keys of the estimate run's n most important memories; ValidationError
    on "top" for an n out of range."""
    ranking = importance_ranking(run)
    if not ranking:
        raise ValidationError({"top": "this run has no scored cell to rank its memories by"})
    if not 1 <= n <= len(ranking):
        raise ValidationError({"top": f"must be between 1 and {len(ranking)} (the memories this run estimated)"})
    return [key for key, _ in ranking[:n]]


def ranks(values):
    """1 for the largest; ties share their average rank."""
    values = np.asarray(values, dtype=float)
    order = (-values).argsort(kind="mergesort")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tied = values == v
        ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(a, b):
    """Spearman's rank correlation; None when either side has no spread (or < 3 values)."""
    if len(a) < 3:
        return None
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def exact_check(run):
    """A full run of an estimate's top memories (params source_run) against that
    estimate: per memory both importances and ranks, their Spearman correlation
    and the mean absolute difference per cell. Comparison only once the exact
    run has finished; `source` None when the estimate run is gone."""
    source = ScoringRun.objects.filter(pk=run.params.get("source_run"), mode=Mode.ESTIMATE).first()
    check = {"source": source, "source_id": run.params.get("source_run"), "keys": run.params.get("keys") or []}
    if source is None or run.status not in FINISHED:
        return check
    ranking = importance_ranking(source)
    estimated = dict(ranking)
    estimate_rank = {key: i for i, (key, _) in enumerate(ranking, start=1)}
    exact = dict(importance_ranking(run))
    keys = [k for k in check["keys"] or exact if k in exact and k in estimated]
    exact_ranks = ranks([exact[k] for k in keys])
    check["rows"] = sorted(
        ({"key": k, "estimate": estimated[k], "exact": exact[k], "estimate_rank": estimate_rank[k],
          "exact_rank": exact_ranks[i]} for i, k in enumerate(keys)),
        key=lambda row: row["exact_rank"],
    )
    check["spearman"] = spearman([estimated[k] for k in keys], [exact[k] for k in keys])
    check["mae"] = _cell_mae(source, run, keys)
    # Every cell failed in one of the runs: not compared, and not shown as 0.
    check["missing"] = [k for k in check["keys"] if k not in keys]
    return check


def _cell_mae(source, run, keys):
    """Mean |estimate − exact| over the cells both runs scored, of these keys (nats)."""
    def cells(of):
        rows = CellScore.objects.filter(run=of, memory__key__in=keys, failed=False)
        return {(m, r): d for m, r, d in rows.values_list("memory_id", "response_id", "delta")}

    exact, estimated = cells(run), cells(source)
    both = [abs(d - estimated[cell]) for cell, d in exact.items() if cell in estimated]
    return float(np.mean(both)) if both else None


MODE = EstimateMode()
