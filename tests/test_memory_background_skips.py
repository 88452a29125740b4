"""A memory with no weight says why: the latest background run passed it over
(too recent, no response after it), rather than only "not scored yet"."""

import pytest
from django.urls import reverse
from django.utils import timezone

from scoring.models import Agent, Memory, ScoringRun
from scoring.models.runs import Mode, RunStatus
from tests.matrix_data import matrix_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    return matrix_run(agent, [[1.0, 0.0]] * 2, keys=["early", "late"])


def background_run(run, skipped):
    return ScoringRun.objects.create(
        agent=run.agent, snapshot=run.snapshot, mode=Mode.INCREMENTAL, status=RunStatus.SUCCEEDED,
        finished_at=timezone.now(), result={"scored": [], "skipped": skipped},
    )


def test_the_memory_page_says_the_latest_background_run_skipped_it_and_why(cast, run):
    late = Memory.objects.get(agent=run.agent, key="late")
    background = background_run(run, [{"key": "late", "reason": "past 60% of the conversation"}])
    client = cast.client_for(cast.viewer)

    html = client.get(reverse("memory_detail", args=[late.pk])).text
    assert "passed this memory over: past 60% of the conversation" in html
    assert reverse("run_detail", args=[background.pk]) in html
    assert "Too few responses follow it yet" in html

    early = Memory.objects.get(agent=run.agent, key="early")
    html = client.get(reverse("memory_detail", args=[early.pk])).text
    assert "passed this memory over" not in html
    assert "No background run has scored this memory yet" in html


def test_the_list_marks_the_skipped_ones(cast, run):
    background_run(run, [{"key": "late", "reason": "no response after it"}])
    html = cast.client_for(cast.viewer).get(reverse("memory_list", args=[run.agent.pk])).text
    assert "The latest background run skipped it: no response after it" in html
    assert html.count('<span class="small">skipped</span>') == 1
