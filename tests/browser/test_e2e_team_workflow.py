"""The whole product in a real browser: one team, one agent, one afternoon.

Operator uploads a snapshot, runs a full matrix and watches it finish, reads
the heatmap, generates fine-tuning candidates; two reviewers approve one; the
operator sends it to training and the job succeeds on the reference server.
Real parts throughout: live Django server, Celery worker and beat processes,
the reference inference server, Chromium. Screenshots land in test-artifacts/.
"""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from scoring.models import Agent, Candidate, ScoringRun, TrainJob
from tests.browser.conftest import login
from tests.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEMO_SNAPSHOT = Path(__file__).resolve().parents[2] / "scoring" / "demo" / "poc_snapshot.json"


def test_it_takes_a_snapshot_from_upload_to_a_trained_sample(
    browser, live_server, celery_worker, celery_beat, cast, ref, screenshots
):
    """One story, read top to bottom like the afternoon it describes: its length
    is the workflow's, not a function's that could be split."""
    agent = Agent.objects.create(
        name="poc", base_url=ref.base_url, model="memscore-ref", required_approvals=2
    )

    # --- the operator: upload, full matrix, heatmap, candidates --------------
    operator = login(browser, live_server, "otto", cast.password)
    screenshots(operator, "agents")
    operator.goto(live_server.url + reverse("snapshot_upload", args=[agent.pk]))
    screenshots(operator, "upload-form")
    operator.set_input_files("input[type=file]", str(DEMO_SNAPSHOT))
    operator.click("form button[type=submit]")
    operator.wait_for_url(re.compile(r"/snapshots/\d+/"))
    snapshot_url = operator.url
    screenshots(operator, "snapshot")

    operator.select_option("select[name=mode]", "full")
    operator.click("text=Start run")
    operator.wait_for_url(re.compile(r"/runs/\d+/$"))
    # The progress bar is swapped in by htmx while the worker scores.
    wait_until_run_ends(operator)
    assert "100%" in operator.locator("#run-progress").inner_text()
    full_run = ScoringRun.objects.get(mode="full")
    assert full_run.status == ScoringRun.Status.SUCCEEDED
    assert full_run.cells.filter(failed=False).count() == full_run.cells.count() > 0
    screenshots(operator, "run-finished")

    operator.goto(live_server.url + reverse("heatmap", args=[full_run.pk]))
    operator.wait_for_function("() => document.body.dataset.heatmapReady === '1'", timeout=30_000)
    canvas = operator.locator("#heatmap-canvas")
    box = canvas.bounding_box()
    assert box["width"] > 50 and box["height"] > 20
    operator.mouse.move(box["x"] + 3, box["y"] + 3)
    operator.wait_for_selector("#heatmap-tooltip:not([hidden])")
    assert operator.locator("#heatmap-tooltip").inner_text().strip()
    operator.mouse.click(box["x"] + 3, box["y"] + 3)
    operator.wait_for_function("() => document.querySelector('#cell-detail').innerText.trim().length > 20")
    screenshots(operator, "heatmap-cell-open")

    operator.goto(snapshot_url)
    operator.select_option("select[name=mode]", "finetune")
    operator.fill("input[name=min_divergence]", "1")
    operator.check("input[type=checkbox][name=alternates]")
    operator.click("text=Start run")
    operator.wait_for_url(re.compile(r"/runs/\d+/$"))
    wait_until_run_ends(operator)
    assert wait_for(lambda: Candidate.objects.filter(agent=agent).exists(), 30, message="candidates")
    candidate = Candidate.objects.filter(agent=agent).order_by("-divergence").first()
    # Alternates come from separate tasks; wait until the best one has its own.
    wait_for(lambda: Candidate.objects.get(pk=candidate.pk).alternate_status == "done", 60,
             message="the alternate response")
    screenshots(operator, "finetune-finished")

    # --- two reviewers approve the same candidate -----------------------------
    for username in ("rita", "rob"):
        reviewer = login(browser, live_server, username, cast.password)
        reviewer.goto(live_server.url + reverse("candidate_detail", args=[candidate.pk]))
        assert reviewer.locator("#alternate-text").inner_text().strip()
        screenshots(reviewer, f"candidate-{username}")
        reviewer.click("button[name=decision][value=approve]")
        wait_for(lambda name=username: candidate.reviews.filter(reviewer__username=name).exists(), 15,
                 message=f"{username}'s approval")
        reviewer.context.close()
    candidate.refresh_from_db()
    assert candidate.status == Candidate.Status.APPROVED

    # --- the operator sends it; the job succeeds on the server ----------------
    posts_before = ref.stats()["train_posts"]
    operator.goto(live_server.url + reverse("train_job_list"))
    operator.click("#send-form button[type=submit]")
    job = wait_for(lambda: TrainJob.objects.first(), 15, message="a training job")
    operator.goto(live_server.url + reverse("train_job_detail", args=[job.pk]))
    operator.wait_for_selector("text=succeeded", timeout=90_000)
    job.refresh_from_db()
    assert job.status == TrainJob.Status.SUCCEEDED and job.server_job_id
    candidate.refresh_from_db()
    assert candidate.status == Candidate.Status.TRAINED
    assert ref.stats()["train_posts"] == posts_before + 1
    screenshots(operator, "training-succeeded")

    for name in ("memory_list",):
        operator.goto(live_server.url + reverse(name, args=[agent.pk]))
        screenshots(operator, name)
    for name in ("run_list", "candidate_list", "activity_list"):
        operator.goto(live_server.url + reverse(name))
        screenshots(operator, name)
    operator.context.close()


def wait_until_run_ends(page):
    """The htmx-polled progress bar fills and the status badge says succeeded."""
    page.wait_for_function(
        """() => {
            const bar = document.querySelector('#run-progress [role=progressbar]');
            return bar && bar.getAttribute('aria-valuenow') === bar.getAttribute('aria-valuemax')
                && document.querySelector('#run-progress .status-succeeded');
        }""",
        timeout=120_000,
    )
