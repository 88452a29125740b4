"""Claiming a run's calls, calling /score, and storing each result as it comes.

A call is claimed with a conditional update (PENDING, or RUNNING with a lapsed
claim → RUNNING with a fresh claim); the claim's attempt number is its token,
so only the latest claimer may store a result. Results are stored one call at
a time, in a transaction that holds the run's row, together with whatever the
call completes (cells, scores, candidates, the end of the run).
"""

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from scoring.client import InferenceClient, InferenceError, TransientError, call_with_retries
from scoring.models import ScoreCall, ScoringRun
from scoring.models.runs import ACTIVE_STATUSES, RunStatus, claimable_q

from . import results
from .tokens import snapshot_tokens

log = logging.getLogger(__name__)

Status = ScoreCall.Status
# A call claimed this many times without an answer keeps killing or hanging
# its workers: it fails rather than being retried for ever.
MAX_CLAIMS = 5


def claim_seconds():
    return settings.MEMSCORE_CLAIM_SECONDS


def claim_next(run_id, concurrency):
    """Claim the run's next call (baselines first); None when there is none to take.

    Also None when `concurrency` calls of the run are already in flight, so
    extra tasks (a re-delivered message, a resumed run) never exceed it.
    """
    now = timezone.now()
    calls = ScoreCall.objects.filter(run_id=run_id)
    if calls.live(now).count() >= concurrency:
        return None
    order = [F("baseline_id").asc(nulls_first=True), "seq"]
    for pk in calls.claimable(now).order_by(*order).values_list("pk", flat=True)[: concurrency * 2]:
        now = timezone.now()
        won = ScoreCall.objects.filter(claimable_q(now), pk=pk).update(
            status=Status.RUNNING,
            claimed_until=now + timedelta(seconds=claim_seconds()),
            attempts=F("attempts") + 1,
            started_at=now,
        )
        if won:
            return ScoreCall.objects.select_related("memory").get(pk=pk)
    return None


def store(run, call, tokens, *, result=None, error=None, n_tokens=0, enqueue_alternates=True):
    """Store a claimed call's outcome and settle what it completes.

    Returns False (storing nothing) when the run is no longer active (it was
    cancelled: in-flight results are discarded) or the claim was lost.
    """
    ok = error is None
    with transaction.atomic():
        locked = ScoringRun.objects.select_for_update().select_related("agent").filter(pk=run.pk).first()
        if locked is None or locked.status not in ACTIVE_STATUSES:
            return False
        now = timezone.now()
        stored = ScoreCall.objects.filter(pk=call.pk, status=Status.RUNNING, attempts=call.attempts).update(
            status=Status.DONE if ok else Status.FAILED,
            result=result,
            tokens=n_tokens,
            error="" if ok else error,
            finished_at=now,
            claimed_until=None,
        )
        if not stored:
            return False
        counters = {"calls_done": F("calls_done") + 1} if ok else {"calls_failed": F("calls_failed") + 1}
        ScoringRun.objects.filter(pk=run.pk).update(tokens_scored=F("tokens_scored") + n_tokens, **counters)
        call.status, call.result, call.error = (Status.DONE if ok else Status.FAILED), result, error or ""
        results.settle(locked, call, tokens, enqueue_alternates=enqueue_alternates)
        results.finish_if_done(run.pk)
    return True


def extend_claim(call):
    ScoreCall.objects.filter(pk=call.pk, status=Status.RUNNING, attempts=call.attempts).update(
        claimed_until=timezone.now() + timedelta(seconds=claim_seconds())
    )


def run_call(run, call, tokens, client, *, enqueue_alternates=True):
    """Score one claimed call, retrying transient errors, and store the outcome."""
    if call.attempts > MAX_CLAIMS:
        error = f"abandoned after {call.attempts - 1} claims that never answered"
        return store(run, call, tokens, error=error, enqueue_alternates=enqueue_alternates)
    key = call.memory.key if call.memory_id else None
    ids = tokens.tokens(call.range_start, call.range_end, call.filter, key)
    expected = len(tokens.responses(call.range_start, call.range_end))

    def score_once():
        scores = client.score(ids)
        if len(scores) != expected:
            raise TransientError(f"/score returned {len(scores)} scores for {expected} responses")
        return scores

    try:
        scores = call_with_retries(score_once, on_retry=lambda attempt, error: extend_claim(call))
    except InferenceError as e:
        return store(run, call, tokens, error=str(e), enqueue_alternates=enqueue_alternates)
    return store(
        run, call, tokens, result=scores, n_tokens=len(ids), enqueue_alternates=enqueue_alternates
    )


class Executor:
    """Works on one run with up to `threads` calls in flight at once.

    threads=0 works in the calling thread, one call at a time: for callers
    inside a transaction, whose rows other threads cannot see.
    """

    def __init__(self, run, *, threads, concurrency=None, time_budget=None, enqueue_alternates=True):
        self.run = run
        self.threads = threads
        self.concurrency = concurrency or run.agent.score_concurrency
        self.deadline = time.monotonic() + time_budget if time_budget else None
        self.enqueue_alternates = enqueue_alternates

    def execute(self):
        """Do the run's claimable work. Returns True if work was left for later."""
        if not self.mark_started():
            return False
        self.tokens = snapshot_tokens(self.run.snapshot)
        if self.threads == 0:
            self.work(close_connection=False)
        else:
            workers = [
                threading.Thread(target=self.work, name=f"run-{self.run.pk}-{i}", daemon=True)
                for i in range(self.threads)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        out_of_time = self.deadline is not None and time.monotonic() > self.deadline
        return out_of_time and ScoreCall.objects.filter(run=self.run).claimable(timezone.now()).exists()

    def mark_started(self):
        now = timezone.now()
        ScoringRun.objects.filter(pk=self.run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=now
        )
        return ScoringRun.objects.filter(pk=self.run.pk, status__in=ACTIVE_STATUSES).exists()

    def is_active(self):
        return ScoringRun.objects.filter(pk=self.run.pk, status__in=ACTIVE_STATUSES).exists()

    def work(self, close_connection=True):
        client = InferenceClient.for_agent(self.run.agent)
        try:
            while self.deadline is None or time.monotonic() < self.deadline:
                if not self.is_active():
                    break  # cancelled, or finished by another worker
                call = claim_next(self.run.pk, self.concurrency)
                if call is None:
                    break
                run_call(self.run, call, self.tokens, client, enqueue_alternates=self.enqueue_alternates)
        except Exception:
            # The claim lapses and the call is taken again (MAX_CLAIMS bounds it).
            log.exception("run %s: a worker thread stopped", self.run.pk)
        finally:
            client.close()
            if close_connection:
                connection.close()
