"""The memories page says, where weights and importances stand side by side,
that they are measured on different contexts and are not one scale."""

import pytest
from django.urls import reverse
from django.utils import timezone

from scoring.importing import import_snapshot
from scoring.models import Agent, Memory, ScoringRun
from scoring.models.runs import Mode, RunStatus
from tests.snapshot_data import snapshot_doc


@pytest.fixture
def agent(db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    snapshot = import_snapshot(agent, snapshot_doc(token_ids=True))
    ScoringRun.objects.create(agent=agent, snapshot=snapshot, mode=Mode.FULL, status=RunStatus.SUCCEEDED,
                              calls_total=2, calls_done=2, finished_at=timezone.now())
    Memory.objects.filter(agent=agent).update(weight=42.0, last_scored=timezone.now())
    return agent


def test_it_says_weights_and_importances_are_not_one_scale(cast, agent):
    html = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk])).text

    head = html.split('id="memory-weight-scale">')[1].split("</span>")[0]
    assert "own window that leaves out the conversation before it" in head
    assert "another scale than the run's importance" in head and "compare weights only with weights" in head
    # The table's two column groups say which context each is measured on.
    assert "· own windows" in html and "· whole conversation" in html
    assert "the two come from different contexts and are not on one scale" in html
