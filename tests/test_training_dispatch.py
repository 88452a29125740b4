"""The dispatcher and the poller against the reference server: accepted,
rejected, unreachable, timed out, taken over, and followed to the end."""

from datetime import timedelta

import httpx
import pytest
from candidate_factory import make_approved
from django.core.exceptions import ValidationError
from django.utils import timezone

from scoring import outbox
from scoring.client import InferenceClient
from scoring.models import Activity, Candidate, TrainJob
from scoring.outbox import send_to_training
from scoring.tasks.training import dispatch_train_jobs, poll_train_jobs
from tests.conftest import wait_for


def server_jobs(ref):
    return sum(ref.stats()["jobs"].values())


def server_job(ref, job_id):
    return httpx.get(f"{ref.base_url}/train/{job_id}").json()


def statuses(candidates):
    pks = [c.pk for c in candidates]
    return set(Candidate.objects.filter(pk__in=pks).values_list("status", flat=True))


def test_it_sends_a_job_and_marks_its_candidates_trained(cast, agent, ref):
    candidates = make_approved(agent, 3)
    job = send_to_training(agent, cast.operator)
    posts, jobs = ref.stats()["train_posts"], server_jobs(ref)

    dispatch_train_jobs()

    job.refresh_from_db()
    assert job.status == TrainJob.Status.QUEUED
    assert job.attempts == 1 and job.accepted_at and job.claimed_until is None
    assert server_job(ref, job.server_job_id)["samples"] == 3
    assert ref.stats()["train_posts"] == posts + 1
    assert server_jobs(ref) == jobs + 1
    assert statuses(candidates) == {"trained"}
    assert Activity.objects.filter(verb="accepted by server", target_id=str(job.pk)).exists()
    # Accepting again (a second sender that got the same job back) changes nothing.
    assert job.mark_accepted(job.server_job_id) is False


def test_it_follows_the_job_to_succeeded(cast, agent, ref):
    candidates = make_approved(agent, 2)
    job = send_to_training(agent, cast.operator)
    outbox.dispatch(job.pk)

    def finished():
        poll_train_jobs()
        job.refresh_from_db()
        return job.status in (TrainJob.Status.SUCCEEDED, TrainJob.Status.FAILED)

    wait_for(finished, timeout=60, interval=0.3, message="the server to finish training")
    assert job.status == TrainJob.Status.SUCCEEDED
    assert job.server_status["status"] == "succeeded"
    assert job.finished_at is not None
    assert statuses(candidates) == {"trained"}
    assert Activity.objects.filter(verb="training succeeded", target_id=str(job.pk)).count() == 1


def test_it_fails_a_job_the_server_rejects_and_lets_its_candidates_go_again(cast, agent, ref):
    good, bad = make_approved(agent, 2)
    # An id far outside the vocabulary: the server answers 400.
    Candidate.objects.filter(pk=bad.pk).update(continuation_ids=[10**9])
    job = send_to_training(agent, cast.operator)

    dispatch_train_jobs()

    job.refresh_from_db()
    assert job.status == TrainJob.Status.FAILED
    assert "HTTP 400" in job.last_error
    assert not job.samples.filter(live=True).exists()
    assert statuses([good, bad]) == {"approved"}

    # Corrected, the same candidates go out again in a new job.
    Candidate.objects.filter(pk=bad.pk).update(continuation_ids=good.continuation_ids)
    new_job = outbox.retry(job, by=cast.operator)
    assert new_job is not None and new_job.pk != job.pk
    assert set(new_job.samples.values_list("candidate_id", flat=True)) == {good.pk, bad.pk}
    outbox.dispatch(new_job.pk)
    new_job.refresh_from_db()
    assert new_job.status == TrainJob.Status.QUEUED
    assert statuses([good, bad]) == {"trained"}
    assert Activity.objects.filter(verb="retried", actor=cast.operator).exists()


def test_it_puts_a_job_back_when_the_server_is_unreachable(cast, agent, ref):
    candidates = make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    real_url = agent.base_url
    agent.base_url = "http://127.0.0.1:9/v1"  # nothing listens there
    agent.save()
    posts = ref.stats()["train_posts"]

    dispatch_train_jobs()

    job.refresh_from_db()
    assert job.status == TrainJob.Status.PENDING
    assert job.attempts == 1 and "cannot connect" in job.last_error
    assert job.retry_after > timezone.now() - timedelta(seconds=1)
    assert statuses(candidates) == {"approved"}

    agent.base_url = real_url
    agent.save()
    TrainJob.objects.filter(pk=job.pk).update(retry_after=timezone.now())
    dispatch_train_jobs()
    job.refresh_from_db()
    assert job.status == TrainJob.Status.QUEUED and job.attempts == 2
    assert ref.stats()["train_posts"] == posts + 1
    assert statuses(candidates) == {"trained"}


def test_it_waits_out_the_backoff(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    TrainJob.objects.filter(pk=job.pk).update(retry_after=timezone.now() + timedelta(minutes=5))
    assert outbox.dispatch() == 0
    job.refresh_from_db()
    assert job.status == TrainJob.Status.PENDING and job.attempts == 0


def test_it_resends_with_the_same_key_after_a_timeout(cast, agent, ref, settings):
    settings.MEMSCORE_RETRY_BACKOFF = 0
    candidates = make_approved(agent, 2)
    job = send_to_training(agent, cast.operator)
    agent.request_timeout = 1.0
    agent.save()
    posts, jobs = ref.stats()["train_posts"], server_jobs(ref)
    # The request goes out, but no answer comes before our client gives up:
    # whether the server took the job is unknown.
    ref.control(latency_ms=2500, fail_endpoints=[])

    dispatch_train_jobs()

    job.refresh_from_db()
    assert job.status == TrainJob.Status.UNKNOWN and job.needs_attention
    assert "no answer" in job.last_error or "took longer" in job.last_error
    assert statuses(candidates) == {"approved"}  # not trained until accepted

    ref.control()
    dispatch_train_jobs()  # the periodic dispatcher, once the (zero) backoff passed

    job.refresh_from_db()
    assert job.status == TrainJob.Status.QUEUED
    assert ref.stats()["train_posts"] == posts + 2
    assert server_jobs(ref) == jobs + 1
    assert server_job(ref, job.server_job_id)["samples"] == 2
    assert statuses(candidates) == {"trained"}

    # Posting once more with the job's key (as a third attempt would) gives the
    # same job back: the server can never start it twice.
    samples = [{"context_ids": s.context_ids, "continuation_ids": s.continuation_ids}
               for s in job.samples.order_by("id")]
    with InferenceClient.for_agent(agent) as client:
        assert client.train(samples, idempotency_key=job.idempotency_key) == job.server_job_id
    assert server_jobs(ref) == jobs + 1


def test_it_resends_an_unknown_job_at_once_when_an_operator_retries(cast, agent, ref):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    TrainJob.objects.filter(pk=job.pk).update(
        status=TrainJob.Status.UNKNOWN, attempts=1, retry_after=timezone.now() + timedelta(hours=1)
    )
    job.refresh_from_db()
    assert outbox.dispatch() == 0  # still backing off

    assert outbox.retry(job, by=cast.operator) == job
    outbox.dispatch()
    job.refresh_from_db()
    assert job.status == TrainJob.Status.QUEUED
    assert Activity.objects.filter(verb="retried", detail__same_key=True).exists()


def test_it_takes_over_a_send_whose_worker_died(cast, agent, ref):
    candidates = make_approved(agent, 2)
    job = send_to_training(agent, cast.operator)
    # A worker claimed the job, posted it (the server has it under the job's
    # key) and died before writing down the answer.
    samples = [{"context_ids": s.context_ids, "continuation_ids": s.continuation_ids}
               for s in job.samples.order_by("id")]
    with InferenceClient.for_agent(agent) as client:
        first_id = client.train(samples, idempotency_key=job.idempotency_key)
    TrainJob.objects.filter(pk=job.pk).update(
        status=TrainJob.Status.SENDING, attempts=1, claimed_until=timezone.now() + timedelta(minutes=1)
    )
    jobs = server_jobs(ref)

    assert outbox.dispatch() == 0  # the claim still runs
    TrainJob.objects.filter(pk=job.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert outbox.dispatch() == 1

    job.refresh_from_db()
    assert job.status == TrainJob.Status.QUEUED
    assert job.server_job_id == first_id
    assert server_jobs(ref) == jobs
    assert statuses(candidates) == {"trained"}


def test_it_ignores_the_outcome_from_a_claim_that_was_taken_over(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    job, stale_claim = outbox.claim(job.pk)
    TrainJob.objects.filter(pk=job.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    job, fresh_claim = outbox.claim(job.pk)
    assert fresh_claim != stale_claim

    outbox._unclaim(job, stale_claim, TrainJob.Status.PENDING, "late news from a dead worker")
    job.refresh_from_db()
    assert job.status == TrainJob.Status.SENDING and job.claimed_until == fresh_claim


def test_it_records_a_failure_on_the_server(cast, agent, ref):
    candidates = make_approved(agent, 2)
    job = send_to_training(agent, cast.operator)
    ref.control(fail_endpoints=["train_job"], fail_nth=[1])
    outbox.dispatch(job.pk)

    def finished():
        poll_train_jobs()
        job.refresh_from_db()
        return not job.is_active

    wait_for(finished, timeout=60, interval=0.3, message="the server to fail the job")
    assert job.status == TrainJob.Status.FAILED
    assert "injected failure" in job.last_error
    # Not trained after all: approved again, free for a new job.
    assert statuses(candidates) == {"approved"}
    assert not job.samples.filter(live=True).exists()
    again = outbox.retry(job, by=cast.operator)
    assert again.samples.count() == 2


def test_it_refuses_to_retry_a_job_in_flight(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    with pytest.raises(ValidationError):
        outbox.retry(job, by=cast.operator)
    assert TrainJob.objects.count() == 1
