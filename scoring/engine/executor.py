"""The Executor: one task's work on a run, with up to `threads` calls in flight.

One thread (the caller's) talks to the database, claiming calls and storing
their results (execution.py); a pool of threads makes the HTTP calls.
Database writes then never contend inside a process (SQLite would make
writers sleep), and results that finish together are stored in one
transaction.
"""

import itertools
import logging
import queue
import threading
import time

from django.db import connection
from django.utils import timezone

from scoring.client import InferenceClient
from scoring.context import snapshot_tokens
from scoring.followups import Followups
from scoring.models import ScoreCall, ScoringRun

from . import shutdown
from .calls import batches, fetch_template, score_batch, score_call
from .execution import (
    CANCEL_CHECK_SECONDS,
    SPARE_CANCEL_CHECK_SECONDS,
    claim_calls,
    claim_next,
    claim_seconds,
    release_claims,
    renew_claims,
    run_memories,
    store,
)

log = logging.getLogger(__name__)
# How often a task with nothing to claim looks whether the baseline another
# task is scoring has finished (baseline_first).
BASELINE_POLL_SECONDS = 0.05
# Answers wait this long at most to be stored together (fewer, larger store
# transactions: the database thread's statements, each a hand-over of the
# GIL to and from the HTTP threads, were the pool's bottleneck), unless a
# half of the pool's calls are back first or nothing is left in flight.
STORE_DELAY_SECONDS = 0.05
# Calls a task alone on its run claims beyond its threads' (claim_calls'
# spare): they wait in the pool's queue, so a thread whose answer is back
# sends the next call at once. Without them it waited for this thread to see
# the answer and claim one: 1-3 ms a call, more while a store ran.
SPARE_CALLS = 2


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
        # Out of time, or the worker shutting down, with calls still to claim:
        # the caller sends the work again.
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
        stopped = out_of_time or shutdown.requested()
        self.work_left = stopped and ScoreCall.objects.filter(run=self.run).claimable(timezone.now()).exists()
        return self.followups

    def may_claim(self):
        """False past the time budget, once the worker is shutting down, or once
        the run ended (cancelled, or finished elsewhere)."""
        return not self.stopping() and self.still_active()

    def still_active(self, max_age=CANCEL_CHECK_SECONDS):
        """False once the run ended (cancelled, or finished elsewhere), as
        seen at most `max_age` seconds ago."""
        now = time.monotonic()
        if now - self._active_checked >= max_age:
            self._active = ScoringRun.objects.active().filter(pk=self.run.pk).exists()
            self._active_checked = now
        return self._active

    def stopping(self):
        """Past the time budget, or the worker shutting down (may_claim, without
        the database: asked by the pool's threads)."""
        return (self.deadline is not None and time.monotonic() > self.deadline) or shutdown.requested()

    def store(self, outcomes):
        try:
            store(self.run, outcomes, self.tokens, baselines=self.baselines, followups=self.followups)
        except Exception:
            # Not stored: the claims lapse and the calls are taken again (MAX_CLAIMS bounds it).
            log.exception("run %s: could not store %d results", self.run.pk, len(outcomes))

    def work_here(self):
        with InferenceClient.for_agent(self.run.agent) as client:
            while self.may_claim():
                call = claim_next(self.run.pk, self.concurrency, memories=self.memories,
                                  baseline_first=client.prefix_cache)
                if call is None:
                    return
                self.store([(call, score_call(call, self.tokens, client, self.run.agent))])

    def waiting_on_baselines(self):
        """Whether calls of the run wait for a baseline still being scored
        (by another task, with baseline_first): worth waiting for, not leaving."""
        return ScoreCall.objects.filter(
            run=self.run, status=ScoreCall.Status.PENDING,
            baseline__status__in=[ScoreCall.Status.PENDING, ScoreCall.Status.RUNNING],
        ).exists()

    def work_pooled(self):
        # One client for all the pool's threads: httpx's connection pool is
        # thread-safe, and each client builds an SSL context (a CA bundle
        # load: tenths of a second of CPU).
        client = InferenceClient.for_agent(self.run.agent)
        # Up to this task's share of the agent's concurrency at once, as its calls.
        fetch_template(self.run.agent, client, at_once=self.threads)
        # What the pool's threads hand back, (key, outcomes or None), read by
        # this thread: one queue instead of waiting on every future in flight
        # each time one finishes (concurrent.futures.wait locks them all).
        answers = queue.SimpleQueue()

        def score_in_thread(key, batch):
            if cancelled.is_set() or self.stopping():
                # A spare call taken from the queue once the work stopped:
                # not sent; this thread gives its claim back.
                answers.put((key, NOT_SENT))
                return
            def keep_claim(attempt, error):
                # A retrying call keeps its claim, unless the run was
                # cancelled: then it is not tried again. This thread's
                # connection is closed at once, as threads of the pool come and go.
                if cancelled.is_set():
                    raise Cancelled
                try:
                    renew_claims(batch)
                finally:
                    connection.close()

            outcomes = None
            try:
                if len(batch) > 1:
                    outcomes = score_batch(batch, self.tokens, client, self.run.agent, on_retry=keep_claim)
                else:
                    outcomes = [score_call(batch[0], self.tokens, client, self.run.agent, on_retry=keep_claim)]
            except Cancelled:
                pass
            except Exception:
                if not cancelled.is_set():  # else what stopped it is its client, closed on leaving
                    log.exception("run %s: calls %s stopped; their claims will lapse",
                                  self.run.pk, [call.seq for call in batch])
            finally:
                answers.put((key, outcomes))

        in_flight, keys, outcomes = {}, itertools.count(), []
        busy = 0  # calls in flight or waiting in the pool's queue
        # Not with several calls a request: a request of spare calls would
        # take more calls than the concurrency into flight at once.
        spare = SPARE_CALLS if not client.batch_tokens else 0
        check_every = SPARE_CANCEL_CHECK_SECONDS if spare else CANCEL_CHECK_SECONDS
        heartbeat = Heartbeat()
        # Answers back but not stored yet, and since when the oldest waits.
        unstored, waiting_since = [], None
        store_at = max(1, self.threads // 2)
        # Set once the run is found cancelled: the calls in flight are not
        # waited for (nothing would store their answers), nor tried again.
        cancelled = threading.Event()
        with client, Pool(self.threads, name=f"run-{self.run.pk}") as pool:
            while True:
                heartbeat.beat(in_flight)
                if outcomes and not unstored:
                    waiting_since = time.monotonic()
                unstored += outcomes
                outcomes = []
                # The next calls are claimed before the answers that came back
                # are stored, so the pool is busy again during the store; but
                # a failed baseline is stored first, as it fails the calls
                # compared with it, which are then never sent, and so is any
                # baseline when its calls wait for it (baseline_first).
                if any(call.baseline_id is None and (outcome.error is not None or client.prefix_cache)
                       for call, outcome in unstored):
                    self.store(unstored)
                    unstored = []
                if busy < self.threads + spare and self.may_claim():
                    claimed = claim_calls(
                        self.run.pk, self.threads + spare - busy, self.concurrency,
                        finished=[call.pk for call, _ in unstored], memories=self.memories,
                        held=[call.pk for batch in in_flight.values() for call in batch], spare=spare,
                        baseline_first=client.prefix_cache,
                    )
                    for batch in batches(claimed, client, self.tokens):
                        key = next(keys)
                        in_flight[key] = batch
                        busy += len(batch)
                        pool.submit(score_in_thread, key, batch)
                due = None if not unstored else waiting_since + STORE_DELAY_SECONDS
                if unstored and (len(unstored) >= store_at or not in_flight or time.monotonic() >= due):
                    self.store(unstored)
                    unstored, due = [], None
                if in_flight and not self.still_active(check_every):
                    cancelled.set()
                    pool.abandon()
                    return
                if not in_flight:
                    if client.prefix_cache and self.may_claim() and self.waiting_on_baselines():
                        time.sleep(BASELINE_POLL_SECONDS)
                        continue
                    return
                timeout = check_every if due is None else max(0.0, due - time.monotonic())
                try:
                    back = [answers.get(timeout=timeout)]
                except queue.Empty:
                    continue
                # Whatever else came back meanwhile is handled in the same turn.
                while not answers.empty():
                    back.append(answers.get_nowait())
                for key, answered in back:
                    batch = in_flight.pop(key)
                    busy -= len(batch)
                    if answered is NOT_SENT:
                        release_claims(batch)
                    elif answered is not None:
                        outcomes.extend(zip(batch, answered))


# What a pool thread hands back for calls it did not send.
NOT_SENT = object()


class Cancelled(Exception):
    """Raised in a pool thread retrying a call of a run found cancelled."""


class Pool:
    """The threads that make a run's HTTP calls, up to `size`, started as
    calls are submitted, each taking the next call waiting.

    Daemons, unlike concurrent.futures' threads, which the interpreter joins
    at exit: a command line told to stop (Ctrl-C cancels its run) waited for
    a call still out to a slow server, its retries included (minutes), whose
    answer nothing would store. Leaving the `with` block waits for the
    threads once their work is done, unless abandon() was called."""

    def __init__(self, size, *, name):
        self.size, self.name = size, name
        self._work = queue.SimpleQueue()
        self._threads = []
        self._abandoned = False

    def submit(self, fn, *args):
        self._work.put((fn, args))
        if len(self._threads) < self.size:
            thread = threading.Thread(target=self._serve, name=f"{self.name}_{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def abandon(self):
        """Leave without waiting for the calls in flight."""
        self._abandoned = True

    def _serve(self):
        while (job := self._work.get()) is not None:
            fn, args = job
            fn(*args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for _ in self._threads:
            self._work.put(None)
        if not self._abandoned:
            for thread in self._threads:
                thread.join()


class Heartbeat:
    """Keeps the claims of the calls in flight alive while they wait on the
    server, renewing them a few times per claim's length from the thread that
    owns the database connection. A claim can then be short (a minute), so the
    calls of a killed worker are taken over within about a minute, however long
    the server may take to answer a live one."""

    BEATS_PER_CLAIM = 3

    def __init__(self):
        self.last = time.monotonic()
        self.every = claim_seconds() / self.BEATS_PER_CLAIM

    def beat(self, in_flight):
        """Renew the claims of the calls in flight ({key: batch}) when it is time."""
        now = time.monotonic()
        if now - self.last >= self.every:
            renew_claims([call for batch in in_flight.values() for call in batch])
            self.last = now
