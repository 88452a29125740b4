"""The Executor: one task's work on a run, with up to `threads` calls in flight.

One thread (the caller's) talks to the database, claiming calls and storing
their results (execution.py); a pool of threads makes the HTTP calls.
Database writes then never contend inside a process (SQLite would make
writers sleep), and results that finish together are stored in one
transaction.
"""

import logging
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from django.db import connection
from django.utils import timezone

from scoring.client import InferenceClient
from scoring.context import snapshot_tokens
from scoring.followups import Followups
from scoring.models import ScoreCall, ScoringRun

from .execution import (
    CANCEL_CHECK_SECONDS,
    claim_calls,
    claim_next,
    claim_seconds,
    extend_claim,
    renew_claims,
    run_memories,
    score_call,
    store,
)

log = logging.getLogger(__name__)


class Executor:
    """Works on one run with up to `threads` calls in flight at once.

    threads=0 works in the calling thread, one call at a time: for callers
    inside a transaction, whose rows other threads could not see.
    """

    def __init__(self, run, *, threads, concurrency=None, time_budget=None):
        self.run = run
        self.threads = threads
        self.concurrency = concurrency or run.agent.score_concurrency
        self.deadline = time.monotonic() + time_budget if time_budget else None
        self._active_checked, self._active = 0.0, True
        self.followups = Followups()
        # Out of time with calls still to claim: the caller sends the work again.
        self.work_left = False

    def execute(self):
        """Do the run's claimable work; returns the Followups of what it stored
        (and sets work_left when it ran out of time before the work did)."""
        if not self.run.mark_started():
            return self.followups
        self.tokens = snapshot_tokens(self.run.snapshot)
        # What does not change during the run, read once: the keys of the
        # memories left out, and each baseline once it has finished.
        self.memories = run_memories(self.run.pk)
        self.baselines = {}
        if self.threads == 0:
            self.work_here()
        else:
            self.work_pooled()
        out_of_time = self.deadline is not None and time.monotonic() > self.deadline
        self.work_left = out_of_time and ScoreCall.objects.filter(run=self.run).claimable(timezone.now()).exists()
        return self.followups

    def may_claim(self):
        """False past the time budget or once the run ended (cancelled, or finished elsewhere)."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            return False
        now = time.monotonic()
        if now - self._active_checked >= CANCEL_CHECK_SECONDS:
            self._active = ScoringRun.objects.active().filter(pk=self.run.pk).exists()
            self._active_checked = now
        return self._active

    def store(self, outcomes):
        try:
            store(self.run, outcomes, self.tokens, baselines=self.baselines, followups=self.followups)
        except Exception:
            # Not stored: the claims lapse and the calls are taken again (MAX_CLAIMS bounds it).
            log.exception("run %s: could not store %d results", self.run.pk, len(outcomes))

    def work_here(self):
        with InferenceClient.for_agent(self.run.agent) as client:
            while self.may_claim():
                call = claim_next(self.run.pk, self.concurrency, memories=self.memories)
                if call is None:
                    return
                self.store([(call, score_call(call, self.tokens, client, self.run.agent))])

    def work_pooled(self):
        # One client for all the pool's threads: httpx's connection pool is
        # thread-safe, and each client builds an SSL context (a CA bundle
        # load: tenths of a second of CPU).
        client = InferenceClient.for_agent(self.run.agent)

        def score_in_thread(call):
            def keep_claim(attempt, error):
                # A retrying call keeps its claim; this thread's connection is closed
                # at once, as threads of the pool come and go.
                try:
                    extend_claim(call)
                finally:
                    connection.close()

            return score_call(call, self.tokens, client, self.run.agent, on_retry=keep_claim)

        in_flight, outcomes = {}, []
        heartbeat = Heartbeat()
        with client, ThreadPoolExecutor(self.threads, thread_name_prefix=f"run-{self.run.pk}") as pool:
            while True:
                heartbeat.beat(in_flight.values())
                # The next calls are claimed before the answers that came back
                # are stored, so the pool is busy again during the store; but
                # a failed baseline is stored first, as it fails the calls
                # compared with it, which are then never sent.
                if any(outcome.error is not None and call.baseline_id is None for call, outcome in outcomes):
                    self.store(outcomes)
                    outcomes = []
                if self.may_claim() and len(in_flight) < self.threads:
                    claimed = claim_calls(
                        self.run.pk, self.threads - len(in_flight), self.concurrency,
                        finished=[call.pk for call, _ in outcomes], memories=self.memories,
                    )
                    for call in claimed:
                        in_flight[pool.submit(score_in_thread, call)] = call
                if outcomes:
                    self.store(outcomes)
                if not in_flight:
                    return
                finished, _ = wait(in_flight, timeout=CANCEL_CHECK_SECONDS, return_when=FIRST_COMPLETED)
                outcomes = []
                for future in finished:
                    call = in_flight.pop(future)
                    try:
                        outcomes.append((call, future.result()))
                    except Exception:
                        log.exception("run %s: call %s stopped; its claim will lapse", self.run.pk, call.seq)


class Heartbeat:
    """Keeps the claims of the calls in flight alive while they wait on the
    server, renewing them a few times per claim's length from the thread that
    owns the database connection. A claim can then be short (a minute), so the
    calls of a killed worker are taken over within about a minute, however long
    the server may take to answer a live one."""

    BEATS_PER_CLAIM = 3

    def __init__(self):
        self.last = time.monotonic()

    def beat(self, calls):
        now = time.monotonic()
        if now - self.last >= claim_seconds() / self.BEATS_PER_CLAIM:
            renew_claims(list(calls))
            self.last = now
