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


def test_its_calls_are_the_rows_the_orm_would_write(snapshot):
    # create_for writes the calls compared with a baseline in plain INSERTs:
    # every field as the model would give it, the baseline linked.
    run = start_run(snapshot, "estimate", params={"ablations": 8, "seed": 1})
    calls = list(run.calls.order_by("seq"))
    fresh = ScoreCall(run=run, range_end=0)

    assert [c.seq for c in calls] == list(range(run.calls_total))
    baselines = [c for c in calls if c.baseline_id is None]
    assert baselines and all(c.baseline_id in {b.pk for b in baselines} for c in calls if c not in baselines)
    ablations = [c for c in calls if c.filter == ScoreCall.Filter.SKIP_KEYS]
    assert ablations and all(isinstance(c.removed_keys, list) and c.removed_keys for c in ablations)
    for call in calls:
        for name in ("status", "attempts", "claimed_until", "result", "tokens", "prompt_tokens", "cached_tokens",
                     "computed_tokens",
                     "error", "started_at", "finished_at"):
            assert getattr(call, name) == getattr(fresh, name), (call.seq, name)

    full = start_run(snapshot, "full")
    baseline, *variants = full.calls.order_by("seq").select_related("memory")
    assert len({c.memory_id for c in variants}) == len(variants) == full.calls_total - 1
    assert {(c.filter, c.baseline_id, c.range_start, c.range_end, tuple(c.removed_keys)) for c in variants} == {
        (ScoreCall.Filter.SKIP_KEY, baseline.pk, baseline.range_start, baseline.range_end, ())}


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
