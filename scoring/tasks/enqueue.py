"""Sending what the engine and the services leave for workers (a Followups).

The only way work reaches Celery outside the tasks themselves: entry points
(views, commands, tasks) call `enqueue_on_commit(followups)` inside their
transaction, or `enqueue(followups)` outside one. Sending is best effort:
every row it refers to is already committed, and a beat sweep finds what
could not be sent (resume_stalled_runs, resend_lost_alternates,
dispatch_train_jobs).
"""

import logging

from django.db import transaction

from scoring.engine import alternates
from scoring.models import ScoringRun

# Modules, not their tasks: the tasks of runs.py enqueue their own followups
# through this module, so runs.py imports it while it is itself being
# imported; its tasks are looked up on it when something is sent.
from . import runs, training

log = logging.getLogger(__name__)

# With the broker down a send fails after one quick retry instead of
# holding the request for kombu's default few seconds of retries.
QUICK_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


class Sending:
    """What enqueue_on_commit did, for the page to say: `sent` is None until
    the transaction commits, then True when every task reached the broker and
    False when one did not (its rows wait; a sweep sends it once the broker
    is back)."""

    def __init__(self, sent=None):
        self.sent = sent

    @property
    def failed(self):
        return self.sent is False


def enqueue_on_commit(followups):
    """enqueue() once the current transaction commits (at once outside one);
    returns a Sending that says, after the commit, whether it worked.

    robust: with the broker down the rows are still saved, and the sweeps
    send the work once it is back.
    """
    if not followups:
        return Sending(sent=True)
    sending = Sending()

    def send():
        sending.sent = False  # stays so if enqueue() raises
        sending.sent = enqueue(followups)

    transaction.on_commit(send, robust=True)
    return sending


def enqueue(followups):
    """Send the followups' tasks now; whether every one reached the broker."""
    if not followups:
        return True
    sent = [_send_run(run_id) for run_id in followups.runs]
    sent += [_send_alternate(candidate_id) for candidate_id in followups.alternates]
    sent += [_warm_heatmap(run_id) for run_id in followups.heatmaps]
    sent += [_nudge_dispatcher(job_id) for job_id in followups.train_jobs]
    return all(sent)


def _send_run(run_id):
    """A run's tasks, one per shard, each with its share of the concurrency.
    With the broker down the run stays queued; resume_stalled_runs sends it."""
    run = ScoringRun.objects.select_related("agent").filter(pk=run_id).first()
    if run is None or not run.is_active:
        return True
    run.mark_enqueued()
    shards = run.shard_count()
    try:
        for shard in range(shards):
            runs.execute_run.apply_async((run_id, shard, shards), retry_policy=QUICK_RETRY)
    except Exception:
        log.warning("could not enqueue run %s; resume_stalled_runs will send it", run_id, exc_info=True)
        return False
    return True


def _warm_heatmap(run_id):
    """Best effort: without it the heatmap is packed on its first view."""
    try:
        runs.warm_heatmap.apply_async((run_id,), retry_policy=QUICK_RETRY)
    except Exception:
        log.warning("could not enqueue the heatmap of run %s", run_id, exc_info=True)
        return False
    return True


def _send_alternate(candidate_id):
    """One that cannot be sent says so and stays pending; resend_lost_alternates
    sends it again once the broker is back."""
    try:
        runs.generate_alternate.apply_async((candidate_id,), retry_policy=QUICK_RETRY)
    except Exception as e:  # the broker is down: say so on the candidate
        alternates.record_not_queued(candidate_id, e)
        return False
    return True


def _nudge_dispatcher(job_id):
    """Ask a worker to send the job now. Best effort: if the broker is down the
    job row is already committed and the periodic dispatcher sends it later."""
    try:
        training.dispatch_train_jobs.apply_async(kwargs={"job_id": str(job_id)}, retry_policy=QUICK_RETRY)
    except Exception:
        log.warning(
            "could not enqueue the dispatcher for train job %s; the periodic dispatcher will send it",
            job_id,
            exc_info=True,
        )
        return False
    return True
