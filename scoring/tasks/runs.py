"""Background work for scoring: running runs, resuming stalled ones, the
incremental tick, and generating alternates."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from scoring import engine
from scoring.client import PermanentError, TransientError
from scoring.engine import finetune, results
from scoring.engine.execution import Executor
from scoring.models import Agent, Candidate, Memory, ScoreCall, ScoringRun
from scoring.models.runs import Mode

log = logging.getLogger(__name__)

# A shard stops claiming calls this long before Celery's soft time limit and
# sends itself again, so no task is killed in the middle of a call.
TIME_MARGIN_SECONDS = 120
# Task-level retries of an alternate, after the client's own retries.
ALTERNATE_TASK_RETRIES = 3


@shared_task(ignore_result=True)
def execute_run(run_id, shard=0, shards=1):
    """Runs when a run is started (one task per shard) and when
    resume_stalled_runs finds a run nobody is working on.

    Claims the run's calls one at a time per thread (this shard's share of the
    agent's concurrency) until none is left; safe to deliver twice.
    """
    run = ScoringRun.objects.select_related("agent", "snapshot").filter(pk=run_id).first()
    if run is None or not run.is_active:
        return
    budget = max(60, settings.CELERY_TASK_SOFT_TIME_LIMIT - TIME_MARGIN_SECONDS)
    threads = engine.threads_for_shard(run, shard, shards)
    executor = Executor(run, threads=threads, time_budget=budget)
    if executor.execute():
        execute_run.delay(run_id, shard, shards)


@shared_task(ignore_result=True)
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
            with transaction.atomic():
                if ScoringRun.objects.select_for_update().filter(pk=run.pk).exists():
                    results.finish_if_done(run.pk)
            continue
        # A task sent a moment ago may still be starting: give it a claim's length.
        latest = calls.aggregate(started=Max("started_at"), finished=Max("finished_at"))
        moments = [run.created_at, run.enqueued_at, run.started_at, *latest.values()]
        if now - max(m for m in moments if m is not None) < grace:
            continue
        log.warning("run %s has stalled; sending its tasks again", run.pk)
        engine.enqueue_run(run.pk)


@shared_task(ignore_result=True)
def resend_lost_alternates(limit=200):
    """Every minute (beat): send again the alternates that stayed pending for
    longer than a claim lasts: their task was lost with a killed worker, or
    could not be queued while the broker was down."""
    cutoff = timezone.now() - timedelta(seconds=settings.MEMSCORE_CLAIM_SECONDS)
    lost = Candidate.objects.filter(
        alternate_status=Candidate.AlternateStatus.PENDING, alternate_requested_at__lt=cutoff
    ).values_list("pk", flat=True)[:limit]
    for pk in lost:
        # Only the tick that moves the timestamp sends it, so two ticks never both do.
        if Candidate.objects.filter(pk=pk, alternate_requested_at__lt=cutoff).update(
            alternate_requested_at=timezone.now()
        ):
            log.warning("alternate of candidate %s was lost; sending it again", pk)
            finetune.enqueue_alternates_of([pk])


@shared_task(ignore_result=True)
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
                engine.start_run(snapshot, Mode.INCREMENTAL, params={"limit": agent.incremental_batch})
            except ValidationError as e:
                # e.g. every due memory is too recent to score yet: try again next tick.
                log.info("agent %s: no incremental run (%s)", agent.name, "; ".join(e.messages))


@shared_task(bind=True, ignore_result=True, max_retries=ALTERNATE_TASK_RETRIES)
def generate_alternate(self, candidate_id):
    """Runs when a fine-tune run with alternates creates a candidate: what
    the model says at that point with no memories. A failure is recorded on
    the candidate and retried with backoff; the last failure stays visible."""
    candidate = (
        Candidate.objects.select_related("agent", "snapshot", "response").filter(pk=candidate_id).first()
    )
    if candidate is None or candidate.alternate_status == Candidate.AlternateStatus.DONE:
        return
    try:
        finetune.generate_alternate(candidate)
    except TransientError as e:
        finetune.record_alternate_failure(candidate, e)
        if self.request.retries < self.max_retries:
            countdown = settings.MEMSCORE_RETRY_BACKOFF * 4 * 2**self.request.retries
            raise self.retry(countdown=countdown, exc=e) from None
    except PermanentError as e:
        finetune.record_alternate_failure(candidate, e)


@shared_task(ignore_result=True)
def warm_heatmap(run_id):
    """Right after a full run ends: pack its heatmap into the shared cache."""
    from scoring.heatmaps import cached_payload

    run = ScoringRun.objects.filter(pk=run_id).first()
    if run is None or run.is_active:
        return
    cached_payload(run)
