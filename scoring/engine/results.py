"""What a finished call leaves behind: cells, scores, candidates, the run's end.

Everything here runs inside the transaction that stores a call's result,
with the run's row locked, so of two calls of a pair the one that finishes
second sees the first and settles the pair, and a crash loses nothing that
was committed.
"""

from django.db.models import F
from django.utils import timezone

from scoring.models import CellScore, ScoreCall, ScoringRun
from scoring.models.runs import ACTIVE_STATUSES, Mode, RunStatus, claimable_q

from . import finetune, incremental

Status = ScoreCall.Status
# Failed calls named in a run's error; the rest are counted.
ERRORS_LISTED = 5
BASELINE_FAILED = "its baseline call failed"


def settle(run, call, tokens, *, enqueue_alternates=True):
    """Settle every pair that `call` (just finished) completes."""
    if call.baseline_id is not None:
        baseline = ScoreCall.objects.get(pk=call.baseline_id)
        if baseline.status in (Status.DONE, Status.FAILED) or call.status == Status.FAILED:
            _settle_pair(run, call, baseline, tokens, enqueue_alternates)
        return
    if call.status == Status.FAILED:
        # Nothing can be compared with a failed baseline: fail the calls not yet run.
        abandoned = ScoreCall.objects.filter(claimable_q(timezone.now()), baseline=call).update(
            status=Status.FAILED, error=BASELINE_FAILED, finished_at=timezone.now(),
            claimed_until=None,
        )
        if abandoned:
            ScoringRun.objects.filter(pk=run.pk).update(calls_failed=F("calls_failed") + abandoned)
    compared = call.compared.filter(status__in=[Status.DONE, Status.FAILED]).select_related("memory")
    for other in compared:
        _settle_pair(run, other, call, tokens, enqueue_alternates)


def _settle_pair(run, call, baseline, tokens, enqueue_alternates):
    ok = call.status == Status.DONE and baseline.status == Status.DONE
    if call.filter == ScoreCall.Filter.SKIP_KEY:
        write_cells(run, call, baseline if ok else None, tokens)
    if not ok:
        return
    if run.mode == Mode.INCREMENTAL:
        incremental.record(run, call, baseline)
    elif run.mode == Mode.FINETUNE:
        found = finetune.build_candidates(
            run, call, baseline, tokens, enqueue_alternates=enqueue_alternates
        )
        ScoringRun.objects.filter(pk=run.pk).update(result={**(run.result or {}), **found})
        run.result = {**(run.result or {}), **found}


def write_cells(run, call, baseline, tokens):
    """One cell per response in the call's range: the signed delta, or failed.

    ignore_conflicts relies on cell_unique_per_run_memory_response: a pair
    settled twice (a re-delivered task) never stores a cell twice.
    """
    entries = tokens.responses(call.range_start, call.range_end)
    if baseline is None:
        cells = [
            CellScore(run_id=run.pk, memory_id=call.memory_id, response_id=e.node_id, failed=True)
            for e in entries
        ]
    else:
        cells = [
            CellScore(run_id=run.pk, memory_id=call.memory_id, response_id=e.node_id, delta=b - w)
            for e, b, w in zip(entries, baseline.result, call.result)
        ]
    CellScore.objects.bulk_create(cells, ignore_conflicts=True, batch_size=2000)


def finish_if_done(run_id):
    """End the run once no call is pending or running. Returns True if this ended it.

    Call inside a transaction that holds the run's row (or where nothing else
    can finish it); the conditional update makes a second attempt harmless.
    """
    if ScoreCall.objects.filter(run_id=run_id).unfinished().exists():
        return False
    run = ScoringRun.objects.select_related("agent").get(pk=run_id)
    if run.status not in ACTIVE_STATUSES:
        return False
    calls = ScoreCall.objects.filter(run_id=run_id)
    failed = list(
        calls.filter(status=Status.FAILED).select_related("memory").order_by("seq")
    )
    pairs_ok = calls.filter(
        baseline__isnull=False, status=Status.DONE, baseline__status=Status.DONE
    ).exists()
    if not failed:
        status = RunStatus.SUCCEEDED
    elif pairs_ok:
        status = RunStatus.PARTIAL
    else:
        status = RunStatus.FAILED
    now = timezone.now()
    return bool(
        ScoringRun.objects.filter(pk=run_id, status__in=ACTIVE_STATUSES).update(
            status=status,
            finished_at=now,
            started_at=run.started_at or now,
            error=error_summary(calls.count(), failed),
            result={**(run.result or {}), **summary(run)},
        )
    )


def error_summary(total, failed):
    """A readable line on what failed: the baselines, then a few other calls."""
    if not failed:
        return ""
    parts = [f"{len(failed)} of {total} calls failed after their retries"]
    listed = [c for c in failed if c.baseline_id is None]
    listed += [c for c in failed if c.baseline_id is not None and c.error != BASELINE_FAILED]
    for c in listed[:ERRORS_LISTED]:
        what = "baseline" if c.baseline_id is None else f"without {c.memory.key}" if c.memory_id else "without memories"
        parts.append(f"call {c.seq} ({what}): {c.error}")
    if len(listed) > ERRORS_LISTED:
        parts.append(f"and {len(listed) - ERRORS_LISTED} more")
    return "; ".join(parts)


def summary(run):
    """The mode's findings, for ScoringRun.result."""
    if run.mode == Mode.FULL:
        calls = ScoreCall.objects.filter(run=run, filter=ScoreCall.Filter.SKIP_KEY)
        return {"memories": calls.count(), "cells": CellScore.objects.filter(run=run).count()}
    if run.mode == Mode.MEMORY:
        deltas = list(
            CellScore.objects.filter(run=run, failed=False).values_list("delta", flat=True)
        )
        ok = ScoreCall.objects.filter(run=run, status=Status.DONE).count() == 2
        return {
            "key": run.params["key"],
            # The reference's importance: the sum of (clamped) divergences.
            "importance": sum(max(0.0, d) for d in deltas) if ok else None,
            "responses": CellScore.objects.filter(run=run).count(),
        }
    if run.mode == Mode.INCREMENTAL:
        return incremental.summary(run, run.result or {})
    return {}
