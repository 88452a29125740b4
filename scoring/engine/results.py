"""What a finished call leaves behind: cells, the mode's findings, the run's end.

Everything here runs inside the transaction that stores a call's result,
with the run's row locked, so of two calls of a pair the one that finishes
second sees the first and settles the pair, and a crash loses nothing that
was committed. What should happen after the commit (alternates, a heatmap to
pack) is returned as Followups, never sent from here.
"""


from django.db import transaction

from scoring import maths, modes
from scoring.followups import Followups
from scoring.models import CellScore, ScoreCall, ScoringRun
from scoring.models.runs import BASELINE_FAILED

from . import alternates
from .calls import causal_windows

Status = ScoreCall.Status
FINISHED = (Status.DONE, Status.FAILED)
# Failed calls named in a run's error; the rest are counted.
ERRORS_LISTED = 5


def baselines_of(stored, known):
    """The baselines of the stored calls by id: `known` (finished ones, which
    never change again) and the rest read now."""
    baselines = dict(known or {})
    missing = {c.baseline_id for c in stored if c.baseline_id is not None} - baselines.keys()
    if missing:
        baselines.update(ScoreCall.objects.only("status", "result").in_bulk(missing))
    return baselines


def settle(run, stored, tokens, baselines):
    """Settle every pair that the just-stored calls complete, each pair once;
    returns the Followups the run's mode asks for.

    A pair is settled by whichever of its two calls is stored second (the
    run's row lock orders them); a failed comparison is settled at once.
    `baselines`: baselines_of(stored, ...).
    """
    pairs = {}
    for call in stored:
        if call.baseline_id is None:
            if call.status == Status.FAILED:
                run.abandon_comparisons(call)
            for other in call.compared.filter(status__in=FINISHED).select_related("memory"):
                pairs[other.pk] = (other, call)
        else:
            baseline = baselines[call.baseline_id]
            if baseline.status in FINISHED or call.status == Status.FAILED:
                pairs[call.pk] = (call, baseline)
    mode = modes.get(run.mode)
    cells, followups = [], Followups()
    for call, baseline in pairs.values():
        ok = call.status == Status.DONE and baseline.status == Status.DONE
        if call.filter == ScoreCall.Filter.SKIP_KEY:
            cells += cell_rows(run, call, baseline if ok else None, tokens)
        if ok:
            # Modes read whole results: a response not asked for (before the
            # memory) is predicted as in the baseline, exactly.
            call.result = [b if w is None else w for b, w in zip(baseline.result, call.result)]
            followups.add(mode.settle(run, call, baseline, tokens))
    CellScore.insert_rows(cells)
    if followups.alternates:
        alternates.request(followups.alternates)
    return followups


def cell_rows(run, call, baseline, tokens):
    """One cell per response in the call's range: (run, memory, response, delta,
    failed, state), with the signed delta; exactly 0 and "unaffected" for a
    response the call did not ask for (None in its result: before the
    memory). When baseline is None (either call failed) the responses after
    the memory are failed, and those before it still unaffected: leaving the
    memory out cannot change them, whatever the server did (with causal
    windows on, as the call would have asked)."""
    entries = tokens.responses(call.range_start, call.range_end)
    if baseline is None:
        known = 0
        if causal_windows():
            known = tokens.unaffected_responses(call.range_start, call.range_end, call.memory.key)
        return [
            CellScore.unaffected_row(run.pk, call.memory_id, e.node_id) if i < known
            else CellScore.failed_row(run.pk, call.memory_id, e.node_id)
            for i, e in enumerate(entries)
        ]
    return [
        CellScore.unaffected_row(run.pk, call.memory_id, e.node_id)
        if w is None else CellScore.scored_row(run.pk, call.memory_id, e.node_id, maths.delta(b, w))
        for e, b, w in zip(entries, baseline.result, call.result)
    ]


def finish_locked(run_id):
    """finish_if_done in a transaction of its own that first locks the run's
    row (a store in progress settles before it): for callers outside a store."""
    with transaction.atomic():
        if not ScoringRun.objects.select_for_update().filter(pk=run_id).exists():
            return Followups()
        return finish_if_done(run_id)


def finish_if_done(run_id):
    """End the run once no call is pending or running; returns the Followups
    of its end (a heatmap to pack), empty when this did not end it.

    Call inside a transaction that holds the run's row (or where nothing else
    can finish it); the conditional update makes a second attempt harmless.
    """
    calls = ScoreCall.objects.filter(run_id=run_id)
    if calls.unfinished().exists():
        return Followups()
    run = ScoringRun.objects.select_related("agent").get(pk=run_id)
    if not run.is_active:
        return Followups()
    failed = list(calls.filter(status=Status.FAILED).select_related("memory").order_by("seq"))
    mode = modes.get(run.mode)
    ended = run.finish(
        any_failed=bool(failed),
        any_pair_done=calls.filter(baseline__isnull=False, status=Status.DONE, baseline__status=Status.DONE).exists(),
        error=error_summary(calls.count(), failed),
        result={**(run.result or {}), **mode.summary(run)},
    )
    return Followups(heatmaps=[run_id] if ended and mode.warm_heatmap else [])


def call_in_words(call):
    """What a call left out: "baseline", "without people/bob", "without 3
    memories together" (a group, or an estimate's random ablation), or
    "without memories" (all of them)."""
    if call.baseline_id is None:
        return "baseline"
    if call.memory_id:
        return f"without {call.memory.key}"
    if call.filter == ScoreCall.Filter.SKIP_KEYS:
        n = len(call.removed_keys or [])
        return f"without {n} memor{'y' if n == 1 else 'ies'} together"
    return "without memories"


def error_summary(total, failed):
    """A readable line on what failed: the baselines, then a few other calls."""
    if not failed:
        return ""
    parts = [f"{len(failed)} of {total} calls failed"]
    listed = [c for c in failed if c.baseline_id is None]
    listed += [c for c in failed if c.baseline_id is not None and c.error != BASELINE_FAILED]
    for c in listed[:ERRORS_LISTED]:
        parts.append(f"call {c.seq} ({call_in_words(c)}): {c.error}")
    if len(listed) > ERRORS_LISTED:
        parts.append(f"and {len(listed) - ERRORS_LISTED} more")
    return "; ".join(parts)
