"""Comparing two full runs of one agent: each memory's importance in both and the change."""

import pytest
from django.urls import reverse

from scoring import maths
from scoring.models import Agent, ScoringRun
from scoring.models.runs import Mode, RunStatus
from tests.matrix_data import FAILED, UNAFFECTED, matrix_run

BEFORE = {
    "a": [1.0, 0.005, -0.7],
    "b": [2.0, 3.0, FAILED],
    "c": [FAILED, FAILED, FAILED],  # every cell failed: no importance, no change
    # Its call failed; the response before it is exactly 0 all the same: still no importance.
    "e": [UNAFFECTED, FAILED, FAILED],
}
AFTER = {
    "a": [0.2, 0.3, 0.0],
    "b": [2.0, 4.5, 1.0],
    "d": [0.1, 0.0, 0.0],  # a new memory: in the later run only
    "e": [0.0, 0.4, 0.2],
}


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")


@pytest.fixture
def runs(agent):
    before = matrix_run(agent, list(BEFORE.values()), keys=list(BEFORE), status=RunStatus.PARTIAL)
    after = matrix_run(agent, list(AFTER.values()), keys=list(AFTER))
    return before, after


def scored(row):
    return [None if v == FAILED else v for v in row]


def test_it_shows_each_memorys_importance_in_both_runs_and_the_change(cast, runs):
    before, after = runs
    page = cast.client_for(cast.viewer).get(reverse("run_compare", args=[before.pk, after.pk]))

    assert page.status_code == 200
    rows = {row["key"]: row for row in page.context["rows"]}
    for key in ("a", "b"):
        old, new = scored(BEFORE[key]), scored(AFTER[key])
        assert rows[key]["before"]["sum"] == pytest.approx(maths.importance_sum(old))
        assert rows[key]["after"]["max"] == pytest.approx(maths.importance_max(new))
        assert rows[key]["change_sum"] == pytest.approx(maths.importance_sum(new) - maths.importance_sum(old))
        assert rows[key]["change_max"] == pytest.approx(maths.importance_max(new) - maths.importance_max(old))
    # By hand: a 1.0 → 0.5 (0.005 and -0.7 count as zero), b 5.0 → 7.5 (its failed cell left out).
    assert rows["a"]["change_sum"] == pytest.approx(-0.5) and rows["b"]["change_sum"] == pytest.approx(2.5)
    assert rows["c"]["before"] is None and rows["c"]["change_sum"] is None
    assert rows["e"]["before"] is None and rows["e"]["change_sum"] is None  # not a rise from 0
    assert rows["d"]["before"] is None and rows["d"]["after"]["sum"] == pytest.approx(0.1)
    # Largest change first; memories without a change last, by key.
    assert [row["key"] for row in page.context["rows"]] == ["b", "a", "c", "d", "e"]
    assert "+2.500" in page.text and "-0.500" in page.text
    assert reverse("glossary") in page.text


def test_it_sorts_by_rise_drop_or_key(cast, runs):
    before, after = runs
    client = cast.client_for(cast.viewer)
    url = reverse("run_compare", args=[before.pk, after.pk])
    order = lambda sort: [r["key"] for r in client.get(url, {"sort": sort}).context["rows"]]  # noqa: E731
    assert order("rise") == ["b", "a", "c", "d", "e"]
    assert order("drop") == ["a", "b", "c", "d", "e"]
    assert order("key") == ["a", "b", "c", "d", "e"]
    assert order("nonsense") == ["b", "a", "c", "d", "e"]


def test_it_offers_the_agents_other_finished_full_runs(cast, runs, agent):
    before, after = runs
    matrix_run(agent, [[1.0]], keys=["a"], status=RunStatus.RUNNING, finished=False)
    other_agent = Agent.objects.create(name="other", base_url="http://127.0.0.1:9/v1", model="m")
    matrix_run(other_agent, [[1.0]], keys=["a"])

    page = cast.client_for(cast.viewer).get(reverse("run_compare_choose", args=[after.pk]))

    assert page.status_code == 200
    assert [other for other, _ in page.context["choices"]] == [before]
    # The earlier run is "before", whichever page the user came from.
    assert reverse("run_compare", args=[before.pk, after.pk]) in page.text


def test_it_compares_only_finished_full_runs_of_one_agent(cast, runs, agent):
    before, after = runs
    client = cast.client_for(cast.viewer)
    active = matrix_run(agent, [[1.0]], keys=["a"], status=RunStatus.RUNNING, finished=False)
    incremental = matrix_run(agent, [[1.0]], keys=["a"])
    incremental.mode = Mode.INCREMENTAL
    incremental.save(update_fields=["mode"])
    other_agent = Agent.objects.create(name="other", base_url="http://127.0.0.1:9/v1", model="m")
    foreign = matrix_run(other_agent, [[1.0]], keys=["a"])

    for first, second in [(before, active), (before, incremental)]:
        assert client.get(reverse("run_compare", args=[first.pk, second.pk])).status_code == 404
    assert client.get(reverse("run_compare_choose", args=[active.pk])).status_code == 404
    # Both exist: not "page not found" (walkthrough), but why, on the first run's chooser.
    chooser = reverse("run_compare_choose", args=[before.pk])
    page = client.get(reverse("run_compare", args=[before.pk, foreign.pk]), follow=True)
    assert page.redirect_chain == [(chooser, 302)]
    assert f"Only runs of one agent can be compared: {before} is poc&#x27;s, {foreign} is other&#x27;s." in page.text
    page = client.get(reverse("run_compare", args=[before.pk, before.pk]), follow=True)
    assert page.redirect_chain == [(chooser, 302)] and "cannot be compared with itself" in page.text


def test_an_outsider_gets_403(cast, runs):
    before, after = runs
    client = cast.client_for(cast.outsider)
    assert client.get(reverse("run_compare", args=[before.pk, after.pk])).status_code == 403
    assert client.get(reverse("run_compare_choose", args=[before.pk])).status_code == 403


def test_the_run_and_memories_pages_lead_to_it(cast, runs, agent):
    before, after = runs
    client = cast.client_for(cast.viewer)
    target = reverse("run_compare_choose", args=[after.pk])
    assert target in client.get(reverse("run_detail", args=[after.pk])).text
    assert target in client.get(reverse("memory_list", args=[agent.pk])).text


def test_it_marks_memories_whose_text_changed_and_training_between_the_runs(cast, agent):
    from django.utils import timezone

    from scoring.models import TrainJob

    before = matrix_run(agent, [[1.0], [2.0]], keys=["a", "b"], memory_texts=["A one way.", "B"])
    after = matrix_run(agent, [[0.5], [1.0]], keys=["a", "b"], memory_texts=["A another way.", "B"])
    day = timezone.timedelta(days=1)
    ScoringRun.objects.filter(pk=before.pk).update(started_at=timezone.now() - 3 * day)
    ScoringRun.objects.filter(pk=after.pk).update(started_at=timezone.now() - day)
    job = TrainJob.objects.create(agent=agent, status=TrainJob.Status.SUCCEEDED, server_job_id="job-1",
                                  accepted_at=timezone.now() - 2 * day, finished_at=timezone.now() - 2 * day)

    r = cast.client_for(cast.viewer).get(reverse("run_compare", args=[before.pk, after.pk]))

    changed = {row["key"]: row["text_changed"] for row in r.context["rows"]}
    assert changed == {"a": True, "b": False}
    assert "1 memory&#x27;s text changed" in r.text or "1 memory's text changed" in r.text
    assert 'id="compare-trained"' in r.text and str(job) in r.text
