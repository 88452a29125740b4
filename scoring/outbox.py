"""Sending approved samples to the server's /train, exactly once.

The send is an outbox: `send_to_training` writes a TrainJob and its samples in
one transaction; the entry point that called it then asks for a dispatcher
after the commit (`Followups(train_jobs=[job.pk])`). Dispatchers claim a job
with a conditional update, POST it with the job's id as the Idempotency-Key,
and record what the server said. Whatever happens in between (a double
click, concurrent senders, the broker down, a worker killed mid-POST), a
sample is in at most one live job (database constraint
`sample_in_one_live_job`) and a job is only ever posted with its own key, so
the server never trains a sample twice and no approved sample is lost.

An agent whose training target is "none" (export only: a stock vLLM or
SGLang server has no /train) gets no jobs: sending refuses with
NoTrainingTarget, and a job made before the agent was switched is never
posted (see send).

The job's states and the verbs that move them are in scoring.models.training.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from scoring.client import InferenceClient, OutcomeUnknown, PermanentError, TransientError
from scoring.models import Activity, Candidate, TrainJob, TrainSample
from scoring.models.agents import TrainingTarget

log = logging.getLogger(__name__)

# The longest wait between two attempts at a job that keeps failing.
MAX_BACKOFF_SECONDS = 300
# What the server's job states mean here.
SERVER_STATUSES = {
    "queued": TrainJob.Status.QUEUED,
    "running": TrainJob.Status.RUNNING,
    "succeeded": TrainJob.Status.SUCCEEDED,
    "failed": TrainJob.Status.FAILED,
}


class NoTrainingTarget(ValidationError):
    """The agent's approved samples are exported, never sent to a server."""

    def __init__(self, agent):
        super().__init__(no_training_target_message(agent))


def no_training_target_message(agent):
    return f"{agent.name} has no training target: approved samples are exported as JSONL."


def nothing_to_send_message(agent):
    return f"Nothing to send: no approved candidates of {agent.name} are waiting."


def broker_down_message(job):
    """What a sender is told when the job is saved but its task could not be queued."""
    return (f"{job} is saved and queued, but the task queue (broker) cannot be reached: it will be sent to "
            "the server when the broker is back.")


def sends_training(agent):
    return agent.training_target != TrainingTarget.NONE


def send_to_training(agent, by, candidate_ids=None, *, actor_name=None):
    """Put `agent`'s approved candidates that no live job holds into a new job.

    Returns the job, or None when there was nothing to send (for example the
    second click of a double click). Candidates a concurrent sender took first
    are left out of this job, never sent twice. The caller enqueues
    `Followups(train_jobs=[job.pk])` on commit; should that be lost, the
    periodic dispatcher sends the job. Raises NoTrainingTarget for an agent
    whose training target is none. `by` is the user who sends it, or None
    (then named by actor_name in the activity log, e.g. "command line").
    """
    if not sends_training(agent):
        raise NoTrainingTarget(agent)
    with transaction.atomic():
        candidates = Candidate.objects.filter(agent=agent).waiting_for_training()
        if candidate_ids is not None:
            candidates = candidates.filter(pk__in=candidate_ids)
        # Locking the rows (in id order, so two senders cannot deadlock) keeps
        # a reviewer from rejecting a candidate while it is being sent.
        candidates = list(candidates.select_for_update().order_by("id"))
        if not candidates:
            return None
        job = TrainJob.objects.create(agent=agent, created_by=by)
        # ON CONFLICT DO NOTHING: a candidate that a concurrent sender put in its
        # own live job first hits `sample_in_one_live_job` and is skipped here.
        TrainSample.objects.bulk_create(
            [
                TrainSample(
                    job=job,
                    candidate=c,
                    context_ids=c.context_ids,
                    continuation_ids=c.training_continuation_ids,
                )
                for c in candidates
            ],
            ignore_conflicts=True,
        )
        included = list(job.samples.values_list("candidate_id", flat=True))
        if not included:
            # Every one was taken by a concurrent sender: no empty job.
            transaction.set_rollback(True)
            return None
        Activity.record(by, "sent to training", job, actor_name=actor_name, agent=agent.name,
                        candidates=sorted(included))
    return job


def retry(job, by):
    """Operator action for a failed or unknown job; returns the job to dispatch.

    Failed: a fresh job for its candidates that are still approved (the
    failed job's samples are not live any more). Returns the new job, or
    None when none is left to send.
    Unknown, or waiting after a failed attempt (backing_off): the same job
    is sent now, with the same Idempotency-Key, so the server cannot start
    it twice. Returns this job.
    Either way the caller enqueues `Followups(train_jobs=[returned.pk])`.
    Raises NoTrainingTarget when the agent is now export only.
    """
    if not sends_training(job.agent):
        raise NoTrainingTarget(job.agent)
    S = TrainJob.Status
    if job.status == S.FAILED:
        with transaction.atomic():
            job.free_samples()
            candidate_ids = list(job.samples.values_list("candidate_id", flat=True))
            new_job = send_to_training(job.agent, by, candidate_ids=candidate_ids)
            Activity.record(
                by, "retried", job, new_job=str(new_job.pk) if new_job else None,
                samples=new_job.samples.count() if new_job else 0,
            )
        return new_job
    if job.status == S.UNKNOWN or job.backing_off:
        if not job.resend_now(by):
            raise ValidationError("This job is no longer waiting to be re-sent.")
        return job
    raise ValidationError(
        f"Only failed jobs, jobs needing attention and jobs waiting after a failed attempt can be sent "
        f"again; this one is {job.get_status_display()}."
    )


def backoff_seconds(attempts):
    base = settings.MEMSCORE_RETRY_BACKOFF * (2 ** max(0, attempts - 1))
    return min(MAX_BACKOFF_SECONDS, base)


def claim_seconds(agent):
    """How long a dispatcher owns a job it is sending: longer than the POST can
    take, so normally only a dead worker's claim runs out. (The client checks its
    total deadline between chunks, so a trickling answer may run up to twice
    the timeout.) Should a slow worker lose its claim anyway, the job is re-sent
    with the same key and the server gives back the same job."""
    return min(settings.MEMSCORE_CLAIM_SECONDS, 2 * agent.request_timeout + 30)


def claim(job_id):
    """Claim one due job for sending; returns (job, claimed_until) or None."""
    try:
        job = TrainJob.objects.select_related("agent").filter(pk=job_id).first()
    except ValidationError:  # not a UUID: a stray message, nothing to do
        return None
    if job is None:
        return None
    now = timezone.now()
    if not job.claim(now + timedelta(seconds=claim_seconds(job.agent)), now):
        return None
    # The claim's expiry is this dispatcher's token: later writes of the outcome
    # only apply while the job is still claimed with this exact value.
    return job, job.claimed_until


def dispatch(job_id=None, limit=50):
    """Send due jobs (one, or up to `limit` oldest); returns how many were sent."""
    if job_id is not None:
        job_ids = [job_id]
    else:
        job_ids = list(TrainJob.objects.due_for_sending().values_list("pk", flat=True)[:limit])
    sent = 0
    for pk in job_ids:
        claimed = claim(pk)
        if claimed is not None:
            send(*claimed)
            sent += 1
    return sent


def send(job, claimed_until):
    """POST a claimed job to /train (its id is the Idempotency-Key) and record the outcome."""
    if not sends_training(job.agent):
        # Refused before the samples (whole contexts each) are read.
        _refuse(job, claimed_until)
        return
    samples = [
        {"context_ids": s.context_ids, "continuation_ids": s.continuation_ids}
        for s in job.samples.filter(live=True).order_by("id")
    ]
    if not samples:
        job.mark_failed("The job has no samples left to send.", claimed_until=claimed_until)
        return
    try:
        with InferenceClient.for_agent(job.agent) as client:
            server_job_id = client.train(samples, idempotency_key=job.idempotency_key)
    except PermanentError as e:
        log.warning("train job %s rejected by the server: %s", job.pk, e)
        job.mark_failed(str(e), claimed_until=claimed_until)
    except OutcomeUnknown as e:
        # The server may have started the job: never post it with another key.
        log.warning("train job %s: outcome unknown (%s); will re-send with the same key", job.pk, e)
        _unclaim(job, claimed_until, TrainJob.Status.UNKNOWN, e)
    except TransientError as e:
        # Nothing reached the server (e.g. connection refused): try again later.
        log.warning("train job %s not sent (%s); will retry", job.pk, e)
        _unclaim(job, claimed_until, TrainJob.Status.PENDING, e)
    else:
        job.mark_accepted(server_job_id)


def _refuse(job, claimed_until):
    """A job of an agent switched to export only after the job was made.

    On its first claim it never reached the server: it fails, and its
    candidates are approved (and exported) again. Later, an earlier attempt
    may have reached the server, so it waits as unknown (needing attention)
    rather than freeing samples the server may be training.
    """
    error = (
        f"Not sent: {no_training_target_message(job.agent)} "
        "Set its training target to /train to send jobs."
    )
    if job.attempts <= 1:
        job.mark_failed(error, claimed_until=claimed_until)
        return
    retry_after = timezone.now() + timedelta(seconds=MAX_BACKOFF_SECONDS)
    job.release_claim(claimed_until, TrainJob.Status.UNKNOWN, error, retry_after)


def _unclaim(job, claimed_until, status, error):
    retry_after = timezone.now() + timedelta(seconds=backoff_seconds(job.attempts))
    job.release_claim(claimed_until, status, error, retry_after)


def poll(job_id):
    """Ask the server how an accepted job is doing and record the answer."""
    job = TrainJob.objects.select_related("agent").on_server().filter(pk=job_id).first()
    if job is None:
        return
    try:
        with InferenceClient.for_agent(job.agent) as client:
            answer = client.train_status(job.server_job_id)
    except (TransientError, PermanentError) as e:
        log.warning("could not poll train job %s: %s", job.pk, e)
        job.record_polling_error(e)
        return
    status = SERVER_STATUSES.get(answer.get("status"))
    if status is None:
        job.record_server_answer(answer, error=f"unknown server status {answer.get('status')!r}")
        return
    if status == TrainJob.Status.FAILED:
        job.record_server_answer(answer)
        job.mark_failed(str(answer.get("error") or "the server reported the job failed"))
        return
    job.record_progress(status, answer)


def poll_all(limit=100):
    job_ids = list(TrainJob.objects.on_server().order_by("accepted_at").values_list("pk", flat=True)[:limit])
    for pk in job_ids:
        poll(pk)
    return len(job_ids)
