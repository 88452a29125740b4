"""Claiming a run's calls, scoring them, and storing each result as it comes.

A call is claimed with a conditional update (the transition PENDING, or
RUNNING with a lapsed claim, → RUNNING with a fresh claim); the claim's
attempt number is its token, so only the latest claimer may store a result
(the transition RUNNING → DONE | FAILED). Both are plain SQL here, being on
every call's hot path; models/runs.py lists the call's states. Results are
stored as calls finish, in a transaction that holds the run's row, together
with whatever they complete (cells, scores, candidates, the end of the run);
what should follow once that commits is collected as Followups for the task.
The Executor (executor.py) drives these for one task.
"""

import copy
import functools
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from scoring.models import Memory, ScoreCall, ScoringRun
from scoring.models.runs import ACTIVE_STATUSES

from . import results
from .calls import MAX_CLAIMS, Outcome

__all__ = ["MAX_CLAIMS", "Outcome", "claim_calls", "claim_next", "store", "renew_claims", "release_claims"]

Status = ScoreCall.Status
# How often the dispatcher looks whether the run was cancelled; more often
# while spare calls wait in its pool's queue, as each would be sent the
# moment a thread comes free (a cancel seen later sends them all).
CANCEL_CHECK_SECONDS = 0.5
SPARE_CANCEL_CHECK_SECONDS = 0.1


# What a worker needs of a claimed call (not the memory's text), as the claim
# returns it: ScoreCall's first fields, then its attempts.
CALL_COLUMNS = ["id", "run_id", "seq", "filter", "memory_id", "range_start", "range_end", "baseline_id", "attempts"]


def claim_seconds():
    return settings.MEMSCORE_CLAIM_SECONDS


def run_memories(run_id):
    """The memories a run's calls leave out, by id: only their keys are loaded
    (the rest loads when used), so a claim needs no join."""
    used = ScoreCall.objects.filter(run_id=run_id, memory__isnull=False).values("memory_id")
    return Memory.objects.filter(pk__in=used).only("key").in_bulk()


def claim_calls(run_id, want, concurrency, *, finished=(), held=(), spare=0, memories=None, baseline_first=False):
    """Claim up to `want` of the run's calls, baselines first.

    baseline_first: a call compared with a baseline is claimed only once
    that baseline is done, so a server with a prefix cache finds the shared
    prefix cached (what the baseline computed) for every variant.

    Never more than `concurrency` calls of the run in flight in all, counting
    other tasks' live claims, so extra tasks (a re-delivered message, a
    resumed run) never exceed the agent's concurrency. `finished`: calls of
    this claimer whose answer came back but is not stored yet; their claims
    are still live, but they are no longer in flight.

    spare: how many calls more than `concurrency` the claimer may hold while
    it is alone on the run, i.e. no live claim but its own (`held`: its calls
    in flight or waiting for a thread, and `finished`). It sends them only as
    its threads, never more than the concurrency, come free: a thread whose
    answer is back sends the next call at once, instead of waiting for a
    claim. With another claimer on the run, no spare: the claims of both stay
    within the concurrency, each counting the other's spare as in flight.

    One conditional UPDATE, in a statement of its own (its own transaction),
    counts the live claims, claims the whole batch and returns the rows it
    took (RETURNING: SQLite 3.35+, PostgreSQL). On PostgreSQL the candidates
    are locked with SKIP LOCKED, so concurrent claimers take different rows
    and never wait on each other; the claimable condition is re-checked on
    every row, so a call is never claimed twice. Plain SQL: on the hot path
    of every call, building these queries with the ORM cost more CPU than the
    database spent running them.
    """
    db = connections[DEFAULT_DB_ALIAS]
    now = timezone.now()
    until = now + timedelta(seconds=claim_seconds())
    finished, held = list(finished), list(held) if spare else []
    claim_sql = _claim_sql(db.vendor, baseline_first, len(finished), bool(spare), len(held))
    db_now = db.ops.adapt_datetimefield_value(now)
    gate = [run_id, Status.DONE] if baseline_first else []
    alone = [*held, spare] if spare else []
    with db.cursor() as cursor:
        cursor.execute(claim_sql, [
            Status.RUNNING, db.ops.adapt_datetimefield_value(until), db_now,
            run_id, Status.PENDING, Status.RUNNING, db_now, *gate,
            want, concurrency, *alone, run_id, Status.RUNNING, db_now, *finished,
            Status.PENDING, Status.RUNNING, db_now,
        ])
        rows = cursor.fetchall()
    won = []
    for row in rows:
        call = ScoreCall(*row[:-1], attempts=row[-1], status=Status.RUNNING, claimed_until=until, started_at=now)
        if memories is not None and call.memory_id is not None:
            if call.memory_id not in memories:
                # A call added after the executor read them (the groups mode's stage 2): read once, kept.
                memories.update(Memory.objects.filter(pk=call.memory_id).only("key").in_bulk())
            call.memory = memories[call.memory_id]
        won.append(call)
    _load_removed_keys(won)
    # RETURNING gives no order: baselines first, then by baseline and seq, as claimed.
    won.sort(key=lambda c: (c.baseline_id is not None, c.baseline_id or 0, c.seq))
    return won


def _load_removed_keys(calls):
    """An ablation's removed keys, for the skip_keys calls among `calls` (one
    query; left out of the claim's RETURNING, which gives JSON as text on SQLite)."""
    ablations = {c.pk: c for c in calls if c.filter == ScoreCall.Filter.SKIP_KEYS}
    if ablations:
        for pk, keys in ScoreCall.objects.filter(pk__in=ablations).values_list("pk", "removed_keys"):
            ablations[pk].removed_keys = keys


@functools.cache
def _claim_sql(vendor, baseline_first=False, n_finished=0, spare=False, n_held=0):
    """The claim's statement on the default database, for a claimer with
    `n_finished` answers back and not stored, and with a spare allowance
    while no live claim but its `n_held` others is there."""
    q = connection.ops.quote_name
    col = {f.name: q(f.column) for f in ScoreCall._meta.concrete_fields}
    table = q(ScoreCall._meta.db_table)
    # As many as wanted, within what the concurrency leaves of the live
    # claims (the claimer's own answers back excepted); never below 0, which
    # SQLite's LIMIT reads as no limit at all.
    least, greatest = ("MIN", "MAX") if vendor == "sqlite" else ("LEAST", "GREATEST")
    not_back = f" AND {col['id']} NOT IN ({', '.join(['%s'] * n_finished)})" if n_finished else ""
    # The spare, while every live claim counted is the claimer's own.
    others = f"COUNT(CASE WHEN {col['id']} NOT IN ({', '.join(['%s'] * n_held)}) THEN 1 END)" if n_held else "COUNT(*)"
    alone = f" + (CASE WHEN {others} = 0 THEN %s ELSE 0 END)" if spare else ""
    room = (
        f"(SELECT {greatest}(0, {least}(%s, %s{alone} - COUNT(*))) FROM {table} WHERE {col['run']} = %s "
        f"AND {col['status']} = %s AND {col['claimed_until']} > %s{not_back})"
    )
    # claimable_q, on the call's own columns only, so PostgreSQL re-checks
    # exactly this on a row that another claimer changed meanwhile.
    claimable = f"({col['status']} = %s OR ({col['status']} = %s AND {col['claimed_until']} < %s))"
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    # A baseline's status only moves forward: this need not be re-checked.
    gate = (
        f" AND ({col['baseline']} IS NULL OR {col['baseline']} IN (SELECT {col['id']} FROM {table} "
        f"WHERE {col['run']} = %s AND {col['baseline']} IS NULL AND {col['status']} = %s))"
    ) if baseline_first else ""
    candidates = (
        f"SELECT {col['id']} FROM {table} WHERE {col['run']} = %s AND {claimable}{gate} "
        f"ORDER BY {col['baseline']} ASC NULLS FIRST, {col['seq']} ASC LIMIT {room}{lock}"
    )
    # All but the last of the columns returned are ScoreCall's first fields,
    # in order: a row builds its call positionally (claim_calls).
    leading = [f.attname for f in ScoreCall._meta.concrete_fields[:len(CALL_COLUMNS) - 1]]
    if leading != CALL_COLUMNS[:-1]:
        raise ImproperlyConfigured(f"ScoreCall's first fields are {leading}, not {CALL_COLUMNS[:-1]}")
    return (
        f"UPDATE {table} SET {col['status']} = %s, {col['claimed_until']} = %s, "
        f"{col['attempts']} = {col['attempts']} + 1, {col['started_at']} = %s "
        f"WHERE {col['id']} IN ({candidates}) AND {claimable} "
        f"RETURNING {', '.join(q(ScoreCall._meta.get_field(c).column) for c in CALL_COLUMNS)}"
    )


def claim_next(run_id, concurrency, *, memories=None, baseline_first=False):
    """Claim one call, or None."""
    claimed = claim_calls(run_id, 1, concurrency, memories=memories, baseline_first=baseline_first)
    return claimed[0] if claimed else None


def store(run, outcomes, tokens, *, baselines=None, followups=None):
    """Store claimed calls' outcomes [(call, Outcome)] and settle what they complete.

    Returns how many were stored: none when the run is no longer active (it
    was cancelled: results in flight are discarded), and not a call whose
    claim was taken over by another worker. `baselines`: a dict the caller
    keeps between stores, of finished baselines (never changed again); filled
    in once the store commits. `followups`: a Followups that gets what the
    settled pairs and the run's end ask for, once the store commits.

    Plain SQL for the statements run for every call (see claim_calls).
    """
    # The connection itself: django.db.connection is a proxy that finds it
    # anew (asgiref's Local) for every attribute, several times a call.
    db = connections[DEFAULT_DB_ALIAS]
    lock_sql, store_sql, count_sql = _store_sql(db.vendor)
    result_field = ScoreCall._meta.get_field("result")
    with transaction.atomic(), db.cursor() as cursor:
        locked = _lock_run(cursor, lock_sql, run, db)
        if locked is None:
            return 0
        now = db.ops.adapt_datetimefield_value(timezone.now())
        stored, done, failed, n_tokens = [], 0, 0, 0
        for call, outcome in outcomes:
            ok = outcome.error is None
            status = Status.DONE if ok else Status.FAILED
            cursor.execute(store_sql, [
                status, result_field.get_db_prep_save(outcome.result, db), outcome.n_tokens,
                outcome.prompt_tokens, outcome.cached_tokens, outcome.computed_tokens,
                outcome.error or "", now, call.pk, Status.RUNNING, call.attempts,
            ])
            if not cursor.rowcount:
                continue
            call.status, call.result, call.error = status, outcome.result, outcome.error or ""
            stored.append(call)
            done, failed, n_tokens = done + ok, failed + (not ok), n_tokens + outcome.n_tokens
        if not stored:
            return 0
        cursor.execute(count_sql, [done, failed, n_tokens, run.pk])
        locked.calls_done += done
        locked.calls_failed += failed
        known = results.baselines_of(stored, baselines)
        settled = results.settle(locked, stored, tokens, known)
        # Every change of a call to done or failed adds to these counters in
        # the same transaction, under this lock: while they fall short of the
        # total, some call is surely unfinished and the run cannot end yet.
        if locked.calls_done + locked.calls_failed >= locked.calls_total:
            settled.add(results.finish_if_done(run.pk))
    if baselines is not None:
        baselines.update({pk: b for pk, b in known.items() if b.status in results.FINISHED})
    if followups is not None:
        followups.add(settled)
    return len(stored)


# What of a run may change while it runs, read from its locked row by every
# store; the rest (its agent, snapshot, mode, params) is the caller's copy's.
RUN_CHANGES = ["status", "calls_total", "calls_done", "calls_failed", "tokens_scored", "result"]


def _lock_run(cursor, lock_sql, run, db):
    """Lock the run's row while it is active; returns a copy of `run` with
    what may have changed read from the row, or None once the run ended."""
    cursor.execute(lock_sql, [run.pk, *ACTIVE_STATUSES])
    row = cursor.fetchone()
    if row is None:
        return None
    locked = copy.copy(run)
    for name, value in zip(RUN_CHANGES, row):
        setattr(locked, name, value)
    locked.result = ScoringRun._meta.get_field("result").from_db_value(locked.result, None, db)
    return locked


@functools.cache
def _store_sql(vendor):
    """store's statements on the default database: (lock the run, store a call, count)."""
    q = connection.ops.quote_name
    run_col = {f.name: q(f.column) for f in ScoringRun._meta.concrete_fields}
    col = {f.name: q(f.column) for f in ScoreCall._meta.concrete_fields}
    run_table, table = q(ScoringRun._meta.db_table), q(ScoreCall._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    lock_run = (
        f"SELECT {', '.join(run_col[c] for c in RUN_CHANGES)} FROM {run_table} WHERE {run_col['id']} = %s "
        f"AND {run_col['status']} IN ({', '.join(['%s'] * len(ACTIVE_STATUSES))}){lock}"
    )
    # Only the latest claimer stores: the call is still running under the
    # attempt number it was claimed with.
    store_call = (
        f"UPDATE {table} SET {col['status']} = %s, {col['result']} = %s, {col['tokens']} = %s, "
        f"{col['prompt_tokens']} = %s, {col['cached_tokens']} = %s, {col['computed_tokens']} = %s, "
        f"{col['error']} = %s, "
        f"{col['finished_at']} = %s, {col['claimed_until']} = NULL "
        f"WHERE {col['id']} = %s AND {col['status']} = %s AND {col['attempts']} = %s"
    )
    count = (
        f"UPDATE {run_table} SET {run_col['calls_done']} = {run_col['calls_done']} + %s, "
        f"{run_col['calls_failed']} = {run_col['calls_failed']} + %s, "
        f"{run_col['tokens_scored']} = {run_col['tokens_scored']} + %s WHERE {run_col['id']} = %s"
    )
    return lock_run, store_call, count


def renew_claims(calls):
    """The heartbeat: RUNNING calls still held under the attempt they were
    claimed with stay claimed for another claim_seconds(). One UPDATE for all
    of a worker's calls in flight; a call another worker took over meanwhile
    (a newer attempt) is left alone. Returns how many were renewed."""
    if not calls:
        return 0
    return _still_held(calls).update(claimed_until=timezone.now() + timedelta(seconds=claim_seconds()))


def release_claims(calls):
    """Give back claimed calls that were never sent (spare calls left in the
    queue when the work stopped): pending again, their claim not counted
    among the attempts MAX_CLAIMS bounds. A call another worker took over
    meanwhile (a newer attempt) is left alone. Returns how many."""
    if not calls:
        return 0
    return _still_held(calls).update(
        status=Status.PENDING, claimed_until=None, started_at=None, attempts=F("attempts") - 1
    )


def _still_held(calls):
    """The claimed calls still running under the attempt they were claimed with."""
    held = Q()
    for call in calls:
        held |= Q(pk=call.pk, attempts=call.attempts)
    return ScoreCall.objects.filter(held, status=Status.RUNNING)
