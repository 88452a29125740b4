"""Panels that update live stay in step (issue 12, defect 4): the run page's
"About this run" with its progress bar, a training job's samples with its status."""

from datetime import UTC, datetime

import pytest
from candidate_factory import make_approved
from django.urls import reverse
from django.utils import timezone

from scoring.models import Agent, ScoringRun, Snapshot, TrainJob
from scoring.models.runs import Mode, RunStatus
from scoring.outbox import send_to_training
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]


def test_about_this_run_follows_the_progress_bar(transactional_db, browser, live_server, cast, screenshots):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    snapshot = Snapshot.objects.create(agent=agent, taken_at=datetime(2026, 11, 1, tzinfo=UTC),
                                       source=Snapshot.Source.API)
    run = ScoringRun.objects.create(agent=agent, snapshot=snapshot, mode=Mode.FULL, status=RunStatus.QUEUED,
                                    calls_total=4)
    page = login(browser, live_server, "vera", cast.password)
    page.goto(live_server.url + reverse("run_detail", args=[run.pk]))
    assert "not yet" in page.inner_text("#run-about")
    screenshots(page, "queued")

    finished = timezone.now()
    ScoringRun.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED, calls_done=4, started_at=finished, finished_at=finished,
        result={"memories": 3, "cells": 12},
    )
    page.wait_for_selector("#run-progress >> text=succeeded", timeout=10_000)
    page.wait_for_selector("#run-about >> text=Memories scored", timeout=5_000)
    about = page.inner_text("#run-about")
    assert "not yet" not in about
    assert timezone.localtime(finished).strftime("%Y-%m-%d %H:%M:%S") in about
    screenshots(page, "succeeded")
    page.context.close()


def test_a_jobs_samples_follow_its_status(transactional_db, browser, live_server, cast, agent, screenshots):
    make_approved(agent, 2)
    job = send_to_training(agent, cast.operator)
    page = login(browser, live_server, "vera", cast.password)
    page.goto(live_server.url + reverse("train_job_detail", args=[job.pk]))
    assert page.inner_text("#job-samples").count("approved") == 2

    job.mark_accepted("job-1")
    job.record_progress(TrainJob.Status.SUCCEEDED, {"status": "succeeded"})
    page.wait_for_selector("#job-status >> text=succeeded", timeout=10_000)
    page.wait_for_function("document.querySelector('#job-samples').innerText.includes('trained')", timeout=5_000)
    samples = page.inner_text("#job-samples")
    assert samples.count("trained") == 2 and "approved" not in samples
    screenshots(page, "trained")
    page.context.close()
