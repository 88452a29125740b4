"""The scoring engine: token sequences, run planning, claimed execution, results.

`start_run(snapshot, mode, params=..., by=...)` plans a run and enqueues it;
`run_inline(run)` does a run's work in this process (tests, the CLI).
"""

from django.db import connection, transaction
from django.utils import timezone

from scoring.client import InferenceError
from scoring.models import Activity, Candidate, ScoreCall, ScoringRun

from . import finetune, planning, results
from .execution import Executor

__all__ = ["start_run", "run_inline", "enqueue_run", "shard_count", "threads_for_shard"]


def start_run(snapshot, mode, *, params=None, by=None, enqueue=True, actor_name=None):
    """Validate, plan and create a run with all its calls; enqueue it on commit.

    Raises django.core.exceptions.ValidationError naming the bad field
    (mode, key, count, ...). enqueue=False leaves the work to run_inline.
    `by` is the user who starts it (None for beat or the command line, then
    named by actor_name in the activity log).
    """
    user = by if getattr(by, "is_authenticated", False) else None
    with transaction.atomic():
        plan = planning.plan(snapshot, mode, params)
        run = ScoringRun.objects.create(
            agent_id=snapshot.agent_id,
            snapshot=snapshot,
            mode=mode,
            params=plan.params,
            calls_total=len(plan.calls),
            created_by=user,
            result=plan.notes or None,
        )
        rows = []
        for seq, spec in enumerate(plan.calls):
            row = ScoreCall(
                run=run, seq=seq, filter=spec.filter, memory=spec.memory,
                range_start=spec.range_start, range_end=spec.range_end,
                baseline=rows[spec.baseline] if spec.baseline is not None else None,
            )
            # Baselines are saved one by one: the calls compared with them need their ids.
            if spec.baseline is None:
                row.save()
            rows.append(row)
        ScoreCall.objects.bulk_create([r for r in rows if r.pk is None], batch_size=1000)
        Activity.record(by, "started run", run, actor_name=actor_name, mode=mode, params=plan.params)
        if enqueue:
            # robust: with the broker down the run is still saved, and
            # resume_stalled_runs sends it once the broker is back.
            transaction.on_commit(lambda: enqueue_run(run.pk), robust=True)
    return run


def shard_count(run):
    """Tasks a run is fanned out to: the agent's shards, never more than its
    concurrency (each task runs at least one call at a time) or its calls."""
    agent = run.agent
    return max(1, min(agent.score_shards, agent.score_concurrency, run.calls_total))


def enqueue_run(run_id):
    """Send a run's tasks to the workers, one per shard."""
    from scoring.tasks.scoring import execute_run

    run = ScoringRun.objects.select_related("agent").filter(pk=run_id).first()
    if run is None or not run.is_active:
        return
    ScoringRun.objects.filter(pk=run_id).update(enqueued_at=timezone.now())
    shards = shard_count(run)
    for shard in range(shards):
        execute_run.delay(run_id, shard, shards)


def threads_for_shard(run, shard, shards):
    """This shard's share of the agent's concurrency (shares add up to it exactly)."""
    concurrency = run.agent.score_concurrency
    return concurrency // shards + (1 if shard < concurrency % shards else 0)


def run_inline(run, *, threads=None):
    """Do a run's work in this process, then its alternates; returns the run, refreshed.

    Inside a transaction (other threads could not see its rows) the calls are
    made one at a time in this thread.
    """
    run = ScoringRun.objects.select_related("agent", "snapshot").get(pk=run.pk)
    if connection.in_atomic_block:
        threads = 0
    elif threads is None:
        threads = run.agent.score_concurrency
    Executor(run, threads=threads, enqueue_alternates=False).execute()
    with transaction.atomic():
        if ScoringRun.objects.select_for_update().filter(pk=run.pk).exists():
            results.finish_if_done(run.pk)
    pending = Candidate.objects.filter(
        run=run, alternate_status=Candidate.AlternateStatus.PENDING
    ).select_related("agent", "snapshot", "response")
    for candidate in pending:
        try:
            finetune.generate_alternate(candidate)
        except InferenceError as e:
            finetune.record_alternate_failure(candidate, e)
    run.refresh_from_db()
    return run
