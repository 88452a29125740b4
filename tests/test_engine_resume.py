"""A cancelled run resumed: its unfinished calls are sent, what was done is
kept, and the run ends with the matrix an uninterrupted run gives."""

import pytest
from django.urls import reverse

from scoring.engine import run_inline, start_run
from scoring.engine.executor import Executor
from scoring.models import Activity, CellScore, ScoreCall, ScoringRun
from scoring.models.runs import RunStatus
from tests.engine_support import conversation_doc, make_snapshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]


def cells(run):
    return {(m, r): (state, delta) for m, r, state, delta in
            CellScore.objects.filter(run=run).values_list("memory_id", "response_id", "state", "delta")}


@pytest.mark.parametrize("mode, params", [("full", None), ("groups", {"threshold": 0.0})])
def test_a_cancelled_run_resumed_ends_as_one_never_stopped(agent, mode, params, monkeypatch, cast):
    snapshot = make_snapshot(agent, conversation_doc(agent.name))
    whole = run_inline(start_run(snapshot, mode, params=params))
    assert whole.status == RunStatus.SUCCEEDED, whole.error

    run = start_run(snapshot, mode, params=params)
    # It works through three calls, then is cancelled.
    monkeypatch.setattr(Executor, "stopping", lambda self: ScoreCall.objects.filter(
        run=self.run, status=ScoreCall.Status.DONE).count() >= 3)
    Executor(ScoringRun.objects.select_related("agent", "snapshot").get(pk=run.pk), threads=0).execute()
    monkeypatch.undo()
    assert run.cancel(by=cast.operator)
    done_before = set(ScoreCall.objects.filter(run=run, status=ScoreCall.Status.DONE).values_list("pk", "finished_at"))
    assert len(done_before) == 3

    left = run.resume(by=cast.operator)

    assert left == run.calls.unfinished().count() > 0
    assert run.status == RunStatus.QUEUED and not run.error and run.cancelled_by is None and run.retried_at
    assert Activity.objects.filter(verb="resumed run", detail__calls=left).exists()
    run = run_inline(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    # What was done before was kept, not sent again.
    assert done_before <= set(ScoreCall.objects.filter(run=run).values_list("pk", "finished_at"))
    mine, theirs = cells(run), cells(whole)
    by_place = {(CellScore.objects.get(run=whole, memory_id=m, response_id=r).memory.key, r): v
                for (m, r), v in theirs.items()}
    assert {(CellScore.objects.get(run=run, memory_id=m, response_id=r).memory.key, r): v
            for (m, r), v in mine.items()} == by_place
    assert run.result.keys() == whole.result.keys()
    # Once resumed and ended, there is nothing to resume.
    assert run.resume() == 0


def test_only_a_cancelled_run_with_calls_left_is_resumed(agent, cast):
    snapshot = make_snapshot(agent, conversation_doc(agent.name))
    done = run_inline(start_run(snapshot, "full"))
    assert done.resume() == 0 and done.status == RunStatus.SUCCEEDED

    queued = start_run(snapshot, "full")
    assert queued.resume() == 0 and queued.status == RunStatus.QUEUED


def test_the_run_page_offers_to_resume_to_those_who_may_start_runs(agent, cast):
    run = start_run(make_snapshot(agent, conversation_doc(agent.name)), "full")
    run.cancel(by=cast.operator)
    url = reverse("run_detail", args=[run.pk])

    page = cast.client_for(cast.operator).get(url).text
    assert f"Resume: send the {run.calls_total} calls not answered" in page
    assert 'id="run-resume"' not in cast.client_for(cast.viewer).get(url).text
    assert cast.client_for(cast.viewer).post(reverse("run_resume", args=[run.pk])).status_code == 403
    assert ScoringRun.objects.get(pk=run.pk).status == RunStatus.CANCELLED

    response = cast.client_for(cast.operator).post(reverse("run_resume", args=[run.pk]), follow=True)
    assert f"Resuming {run}: {run.calls_total} calls left to send." in response.text
    assert ScoringRun.objects.get(pk=run.pk).status in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED)
