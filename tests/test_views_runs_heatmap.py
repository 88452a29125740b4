"""A run whose mode has no heatmap (fine-tune) has none: its heatmap page
says so on the run's page, and its data and downloads are 404s."""

import pytest
from django.urls import reverse

from scoring.importing import import_snapshot
from scoring.models import Agent, ScoringRun
from scoring.models.runs import Mode, RunStatus
from tests.snapshot_data import snapshot_doc


@pytest.fixture
def finetune_run(db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    snapshot = import_snapshot(agent, snapshot_doc(token_ids=True))
    return ScoringRun.objects.create(agent=agent, snapshot=snapshot, mode=Mode.FINETUNE,
                                     status=RunStatus.SUCCEEDED, params={"count": 200})


def test_a_finetune_run_has_no_heatmap(cast, finetune_run):
    client = cast.client_for(cast.viewer)
    response = client.get(reverse("heatmap", args=[finetune_run.pk]), follow=True)
    assert response.redirect_chain == [(reverse("run_detail", args=[finetune_run.pk]), 302)]
    assert f"Run #{finetune_run.pk} (fine-tune candidates) has no heatmap" in response.text
    assert "0 memories" not in response.text
    for name in ("heatmap_data", "heatmap_csv", "heatmap_cells_json"):
        assert client.get(reverse(name, args=[finetune_run.pk])).status_code == 404
    # Its page offers no heatmap either.
    page = client.get(reverse("run_detail", args=[finetune_run.pk])).text
    assert reverse("heatmap", args=[finetune_run.pk]) not in page
