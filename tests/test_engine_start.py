"""start_run and ScoringRun.cancel: validation, the rows a run starts with, the log."""

import pytest
from django.core.exceptions import ValidationError

from scoring.engine import start_run
from scoring.models import Activity, ScoreCall, ScoringRun
from tests.engine_support import conversation_doc, make_snapshot


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent)


def test_it_creates_the_run_and_its_calls_and_sends_nothing(
    snapshot, cast, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        run = start_run(snapshot, "full", by=cast.operator)

    assert run.status == ScoringRun.Status.QUEUED
    assert run.created_by == cast.operator
    assert run.agent == snapshot.agent
    assert run.calls_total == run.calls.count() == 9
    assert set(run.calls.values_list("status", flat=True)) == {ScoreCall.Status.PENDING}
    entry = Activity.objects.get(verb="started run")
    assert (entry.actor, entry.target_id, entry.detail["mode"]) == (cast.operator, str(run.pk), "full")
    # The caller sends it (enqueue_on_commit): the engine knows no Celery.
    assert callbacks == []


def test_it_names_the_bad_field(snapshot):
    cases = [
        ("sideways", {}, "mode"),
        ("memory", {"key": ""}, "key"),
        ("incremental", {"limit": "ten"}, "limit"),
        ("incremental", {"response_window": 0}, "response_window"),
        ("full", {"count": 3}, "count"),
    ]
    for mode, params, field in cases:
        with pytest.raises(ValidationError) as e:
            start_run(snapshot, mode, params=params)
        assert field in e.value.message_dict, (mode, params)
    assert not ScoringRun.objects.exists()
    assert not Activity.objects.filter(verb="started run").exists()


def test_it_ignores_blank_form_fields(snapshot):
    run = start_run(snapshot, "full", params={"key": "", "count": None})

    assert run.params == {}


@pytest.mark.parametrize("mode", ["full", "finetune"])
def test_it_refuses_a_run_of_a_snapshot_without_memories(agent, mode):
    # A fine-tune run's call without memories would be its baseline again.
    doc = conversation_doc(agent.name, identity=False, repeat_key=False)
    doc["conversation"] = [n for n in doc["conversation"] if "memory" not in n]
    snapshot = make_snapshot(agent, doc)

    with pytest.raises(ValidationError) as e:
        start_run(snapshot, mode)

    assert "no memories" in e.value.message_dict["snapshot"][0]


def test_it_cancels_an_active_run_once(snapshot, cast):
    run = start_run(snapshot, "full", by=cast.operator)

    assert run.cancel(by=cast.operator) is True
    assert run.cancel(by=cast.operator) is False

    run.refresh_from_db()
    assert run.status == ScoringRun.Status.CANCELLED
    assert run.cancelled_by == cast.operator
    assert run.finished_at is not None
    assert Activity.objects.filter(verb="cancelled run", target_id=str(run.pk)).count() == 1
