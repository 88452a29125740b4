"""What a finished call leaves behind: cells, scores, candidates, the run's end.

Everything here runs inside the transaction that stores a call's result,
with the run's row locked, so of two calls of a pair the one that finishes
second sees the first and settles the pair, and a crash loses nothing that
was committed.
"""

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from scoring.models import CellScore, ScoreCall, ScoringRun
from scoring.models.runs import ACTIVE_STATUSES, Mode, RunStatus, claimable_q

from . import finetune, incremental

Status = ScoreCall.Status
# Failed calls named in a run's error; the rest are counted.
ERRORS_LISTED = 5
BASELINE_FAILED = "its baseline call failed"


def settle(run, stored, tokens, *, enqueue_alternates=True, baselines=None):
    """Settle every pair that the just-stored calls complete, each pair once.

    A pair is settled by whichever of its two calls is stored second (the
    run's row lock orders them); a failed comparison is settled at once.

    `baselines`: finished baselines by id that the caller read in committed
    stores (a finished call never changes again). Returns the finished
    baselines read here, for the caller to keep once this transaction commits.
    """
    pairs = {}
    baselines = dict(baselines or {})
    missing = {c.baseline_id for c in stored if c.baseline_id is not None} - baselines.keys()
    if missing:
        baselines.update(ScoreCall.objects.only("status", "result").in_bulk(missing))
    for call in stored:
        if call.baseline_id is None:
            if call.status == Status.FAILED:
                _abandon_comparisons(run, call)
            for other in call.compared.filter(status__in=[Status.DONE, Status.FAILED]).select_related("memory"):
                pairs[other.pk] = (other, call)
        else:
            baseline = baselines[call.baseline_id]
            if baseline.status in (Status.DONE, Status.FAILED) or call.status == Status.FAILED:
                pairs[call.pk] = (call, baseline)
    cells = []
    for call, baseline in pairs.values():
        cells += _settle_pair(run, call, baseline, tokens, enqueue_alternates)
    insert_cells(cells)
    return {pk: b for pk, b in baselines.items() if b.status in (Status.DONE, Status.FAILED)}


def _abandon_comparisons(run, baseline):
    """Nothing can be compared with a failed baseline: fail the calls not yet run."""
    now = timezone.now()
    abandoned = ScoreCall.objects.filter(claimable_q(now), baseline=baseline).update(
        status=Status.FAILED, error=BASELINE_FAILED, finished_at=now, claimed_until=None
    )
    if abandoned:
        ScoringRun.objects.filter(pk=run.pk).update(calls_failed=F("calls_failed") + abandoned)
        run.calls_failed += abandoned


def _settle_pair(run, call, baseline, tokens, enqueue_alternates):
    """Settle one pair; returns the cells to insert."""
    ok = call.status == Status.DONE and baseline.status == Status.DONE
    cells = []
    if call.filter == ScoreCall.Filter.SKIP_KEY:
        cells = cell_rows(run, call, baseline if ok else None, tokens)
    if not ok:
        return cells
    if run.mode == Mode.INCREMENTAL:
        incremental.record(run, call, baseline)
    elif run.mode == Mode.FINETUNE:
        found = finetune.build_candidates(
            run, call, baseline, tokens, enqueue_alternates=enqueue_alternates
        )
        ScoringRun.objects.filter(pk=run.pk).update(result={**(run.result or {}), **found})
        run.result = {**(run.result or {}), **found}
    return cells


def cell_rows(run, call, baseline, tokens):
    """One cell per response in the call's range: (run, memory, response, delta, failed),
    with the signed delta, or failed when baseline is None."""
    entries = tokens.responses(call.range_start, call.range_end)
    if baseline is None:
        return [(run.pk, call.memory_id, e.node_id, None, True) for e in entries]
    return [
        (run.pk, call.memory_id, e.node_id, b - w, False)
        for e, b, w in zip(entries, baseline.result, call.result)
    ]


def insert_cells(rows):
    """Insert cell rows, skipping any already stored.

    ON CONFLICT DO NOTHING relies on cell_unique_per_run_memory_response: a
    pair settled twice never stores a cell twice. Plain executemany, as a
    full matrix writes up to a million cells and the ORM's bulk_create spends
    far longer building objects and SQL than the database spends inserting.
    """
    if not rows:
        return
    table = connection.ops.quote_name(CellScore._meta.db_table)
    sql = (
        f"INSERT INTO {table} (run_id, memory_id, response_id, delta, failed) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 10_000):
            cursor.executemany(sql, rows[start : start + 10_000])


def write_cells(run, call, baseline, tokens):
    """Store one pair's cells (baseline None: failed cells)."""
    insert_cells(cell_rows(run, call, baseline, tokens))


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
    ended = bool(
        ScoringRun.objects.filter(pk=run_id, status__in=ACTIVE_STATUSES).update(
            status=status,
            finished_at=now,
            started_at=run.started_at or now,
            error=error_summary(calls.count(), failed),
            result={**(run.result or {}), **summary(run)},
        )
    )
    if ended and run.mode == Mode.FULL:
        # Packing a million cells takes seconds: do it now, not on the first view.
        transaction.on_commit(lambda: _enqueue_heatmap_warming(run_id), robust=True)
    return ended


def _enqueue_heatmap_warming(run_id):
    from scoring.tasks.scoring import warm_heatmap

    warm_heatmap.delay(run_id)


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
