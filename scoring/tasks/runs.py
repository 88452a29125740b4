"""Background work for scoring: running runs, resuming stalled ones, the
incremental tick, generating alternates and packing heatmaps.

Task names keep this module's old name (scoring.tasks.scoring) so that
messages queued before an upgrade still find their task.
"""

import logging
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_shutting_down
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from scoring.client import PermanentError, TransientError
from scoring.engine import alternates, results, shutdown, start_run
from scoring.engine.executor import Executor
from scoring.followups import Followups
from scoring.heatmap.payload import cached_payload
from scoring.models import Agent, Memory, ScoreCall, ScoringRun
from scoring.models.runs import Mode

from .enqueue import enqueue, enqueue_on_commit

log = logging.getLogger(__name__)

# A shard stops claiming calls this long before Celery's soft time limit and
# sends itself again, so no task is killed in the middle of a call.
TIME_MARGIN_SECONDS = 120
# Task-level retries of an alternate, after the client's own retries.
ALTERNATE_TASK_RETRIES = 3


@shared_task(name="scoring.tasks.scoring.execute_run", ignore_result=True)
def execute_run(run_id, shard=0, shards=1):
    """Runs when a run is started (one task per shard) and when
    resume_stalled_runs finds a run nobody is working on.

    Claims the run's calls one at a time per thread (this shard's share of the
    agent's concurrency) until none is left, or until its time is up or the
    worker shuts down, when it sends itself again; safe to deliver twice.
    """
    run = ScoringRun.objects.select_related("agent", "snapshot").filter(pk=run_id).first()
    if run is None or not run.is_active:
        return
    if shutdown.requested():
        # Taken after the worker was told to stop (its consumer may still take
        # a message, with the embedded broker one more poll of up to 2 s):
        # left in the queue for another worker.
        execute_run.delay(run_id, shard, shards)
        return
    budget = max(60, settings.CELERY_TASK_SOFT_TIME_LIMIT - TIME_MARGIN_SECONDS)
    executor = Executor(run, threads=run.threads_for_shard(shard, shards), time_budget=budget)
    enqueue(executor.execute())
    if executor.work_left:
        # Out of time, or this worker is shutting down: the message waits in
        # the broker for another worker, or this one once restarted (a pool
        # process publishes on a connection of its own, open until the task
        # returns: checked with Redis and the embedded broker). Should it be
        # lost, resume_stalled_runs sends the run again a claim's length after
        # its last call.
        execute_run.delay(run_id, shard, shards)


@worker_shutting_down.connect
def stop_claiming(**kwargs):
    """SIGTERM or Ctrl-C: Celery's warm shutdown waits for the running tasks, so
    they stop claiming calls and finish only those in flight (engine/shutdown.py).
    Sent in the worker's main process, inside its signal handler."""
    shutdown.request()


@shared_task(name="scoring.tasks.scoring.resume_stalled_runs", ignore_result=True)
def resume_stalled_runs(limit=100):
    """Every 15 seconds (beat): re-send the tasks of active runs that have
    work to claim and nobody working on them, e.g. after a worker was killed
    (its claims lapse after MEMSCORE_CLAIM_SECONDS), and end runs whose calls
    are all finished."""
    now = timezone.now()
    grace = timedelta(seconds=settings.MEMSCORE_CLAIM_SECONDS)
    for run in ScoringRun.objects.active().order_by("created_at")[:limit]:
        calls = ScoreCall.objects.filter(run=run)
        if calls.live(now).exists():
            continue
        if not calls.claimable(now).exists():
            enqueue(results.finish_locked(run.pk))
            continue
        # A task sent a moment ago may still be starting: give it a claim's length.
        latest = calls.aggregate(started=Max("started_at"), finished=Max("finished_at"))
        moments = [run.created_at, run.enqueued_at, run.started_at, *latest.values()]
        if now - max(m for m in moments if m is not None) < grace:
            continue
        log.warning("run %s has stalled; sending its tasks again", run.pk)
        enqueue(Followups(runs=[run.pk]))


@shared_task(name="scoring.tasks.scoring.resend_lost_alternates", ignore_result=True)
def resend_lost_alternates(limit=200):
    """Every minute (beat): send again the alternates that stayed pending for
    longer than a generation may take (MEMSCORE_ALTERNATE_LOST_SECONDS): their
    task was lost with a killed worker, or could not be queued while the
    broker was down."""
    cutoff = timezone.now() - timedelta(seconds=settings.MEMSCORE_ALTERNATE_LOST_SECONDS)
    lost = alternates.take_lost(cutoff, limit)
    for pk in lost:
        log.warning("alternate of candidate %s was lost; sending it again", pk)
    enqueue(Followups(alternates=lost))


@shared_task(name="scoring.tasks.scoring.score_due_memories", ignore_result=True)
def score_due_memories(limit=None):
    """Every minute (beat): start an incremental run on each enabled agent's
    latest snapshot that has memories due for scoring, unless one is already
    active. Each run scores at most the agent's incremental_batch memories."""
    now = timezone.now()
    for agent in Agent.objects.filter(incremental_enabled=True)[:limit]:
        snapshot = agent.snapshots.order_by("-taken_at", "-id").first()
        if snapshot is None:
            continue
        due = Memory.objects.filter(agent=agent, nodes__snapshot=snapshot).due_for_scoring(
            now, agent.incremental_max_age
        )
        if not due.exists():
            continue
        with transaction.atomic():
            # The agent's row serializes ticks, so two never start two runs.
            Agent.objects.select_for_update().filter(pk=agent.pk).first()
            if agent.runs.active().filter(mode=Mode.INCREMENTAL).exists():
                continue
            try:
                run = start_run(snapshot, Mode.INCREMENTAL, params={"limit": agent.incremental_batch})
            except ValidationError as e:
                # e.g. every due memory is too recent to score yet: try again next tick.
                log.info("agent %s: no incremental run (%s)", agent.name, "; ".join(e.messages))
                continue
            enqueue_on_commit(Followups(runs=[run.pk]))


@shared_task(
    name="scoring.tasks.scoring.generate_alternate", bind=True, ignore_result=True,
    max_retries=ALTERNATE_TASK_RETRIES,
)
def generate_alternate(self, candidate_id):
    """Runs when a fine-tune run with alternates creates a candidate: what
    the model says at that point with no memories. A failure is recorded on
    the candidate and retried with backoff; the last failure stays visible."""
    candidate = alternates.pending(candidate_id)
    if candidate is None:
        return
    try:
        alternates.generate(candidate)
    except TransientError as e:
        alternates.record_failure(candidate, e)
        if self.request.retries < self.max_retries:
            countdown = settings.MEMSCORE_RETRY_BACKOFF * 4 * 2**self.request.retries
            raise self.retry(countdown=countdown, exc=e) from None
    except PermanentError as e:
        alternates.record_failure(candidate, e)


@shared_task(name="scoring.tasks.scoring.warm_heatmap", ignore_result=True)
def warm_heatmap(run_id):
    """Right after a full run ends: pack its heatmap into the shared cache."""
    run = ScoringRun.objects.filter(pk=run_id).first()
    if run is None or run.is_active:
        return
    cached_payload(run)
