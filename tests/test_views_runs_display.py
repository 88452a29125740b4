"""How the run and snapshot pages write what they show: one link to the
memories, a re-score run's training job, identifiers without thousands
separators, counts with them."""

import pytest
from django.urls import reverse

from scoring.importing import import_snapshot
from scoring.models import Agent, ScoringRun, Snapshot, TrainJob
from scoring.models.runs import Mode, RunStatus
from tests.snapshot_data import snapshot_doc


@pytest.fixture
def snapshot(db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    return import_snapshot(agent, snapshot_doc(token_ids=True))


def run_of(snapshot, mode, **params):
    return ScoringRun.objects.create(agent=snapshot.agent, snapshot=snapshot, mode=mode, params=params,
                                     status=RunStatus.SUCCEEDED, calls_total=2, calls_done=2)


def test_the_run_page_links_the_memories_once(cast, snapshot):
    run = run_of(snapshot, Mode.FULL)
    html = cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk])).text
    assert html.count(f'href="{reverse("memory_list", args=[snapshot.agent_id])}"') == 1
    assert "Memories of poc" in html


def test_a_rescore_run_names_its_training_job(cast, snapshot):
    run = run_of(snapshot, Mode.FINETUNE, count=10, alternates=False)
    job = TrainJob.objects.create(agent=snapshot.agent, status=TrainJob.Status.SUCCEEDED, server_job_id="j1")
    job.rescore_runs.add(run)
    html = cast.client_for(cast.operator).get(reverse("run_detail", args=[run.pk])).text
    assert f'<a href="{reverse("train_job_detail", args=[job.pk])}">{job}</a>' in html
    other = run_of(snapshot, Mode.FINETUNE, count=10)
    assert "re-scores" not in cast.client_for(cast.operator).get(reverse("run_detail", args=[other.pk])).text


def test_an_estimates_seed_has_no_thousands_separators(cast, snapshot):
    run = run_of(snapshot, Mode.ESTIMATE, ablations=16, seed=323988391)
    html = cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk])).text
    assert "<dd>323988391</dd>" in html and "323,988,391" not in html
    exact = run_of(snapshot, Mode.FULL, keys=["people/alice"], source_run=1234)
    html = cast.client_for(cast.viewer).get(reverse("run_detail", args=[exact.pk])).text
    assert "<dd>1234</dd>" in html


def test_the_snapshot_page_writes_counts_with_thousands_separators(cast, snapshot):
    Snapshot.objects.filter(pk=snapshot.pk).update(token_count=11802, node_count=1250)
    html = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk])).text
    assert "<dd>11,802</dd>" in html and "<dd>1,250</dd>" in html
    assert "11802" not in html
