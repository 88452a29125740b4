"""A real Celery worker SIGKILLed while its POST /train is in flight."""

import httpx
import pytest
from candidate_factory import make_approved
from django.contrib.auth.models import User

from scoring.followups import Followups
from scoring.models import Agent, Candidate, TrainJob
from scoring.outbox import send_to_training
from scoring.tasks.enqueue import enqueue
from scoring.tasks.training import dispatch_train_jobs
from tests.conftest import wait_for


@pytest.fixture
def short_claims(monkeypatch):
    # Read by the worker process at start: a dead worker's claim runs out in 3 s.
    monkeypatch.setenv("MEMSCORE_CLAIM_SECONDS", "3")


@pytest.mark.slow
def test_it_sends_exactly_once_when_a_worker_dies_mid_send(short_claims, celery_worker, ref):
    agent = Agent.objects.create(name="poc", base_url=ref.base_url, model="memscore-ref")
    operator = User.objects.create_user("otto")
    candidates = make_approved(agent, 3)
    posts = ref.stats()["train_posts"]
    jobs = sum(ref.stats()["jobs"].values())
    # The server holds the POST long enough to kill the worker during it.
    ref.control(latency_ms=5000, fail_endpoints=[])

    job = send_to_training(agent, operator)
    enqueue(Followups(train_jobs=[job.pk]))  # the nudge reaches the worker

    wait_for(lambda: ref.stats()["train_posts"] > posts, timeout=30, message="the POST in flight")
    job.refresh_from_db()
    assert job.status == TrainJob.Status.SENDING
    celery_worker.kill()
    ref.control()
    celery_worker.restart()

    def accepted():
        dispatch_train_jobs.delay()  # what beat does every 10 seconds
        job.refresh_from_db()
        return job.status == TrainJob.Status.QUEUED

    wait_for(accepted, timeout=60, interval=1.0, message="the job to be accepted after the restart")

    assert job.attempts == 2
    assert sum(ref.stats()["jobs"].values()) == jobs + 1
    assert ref.stats()["train_posts"] == posts + 2  # both posts carried the job's own key
    answer = httpx.get(f"{ref.base_url}/train/{job.server_job_id}").json()
    assert answer["job_id"] == job.server_job_id and answer["samples"] == 3
    assert TrainJob.objects.count() == 1
    pks = [c.pk for c in candidates]
    assert set(Candidate.objects.filter(pk__in=pks).values_list("status", flat=True)) == {"trained"}
