"""Incremental mode: due memories, oldest first, the 60% cutoff, and weights as a moving average."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from scoring.engine import run_inline, start_run
from scoring.models import Memory, MemoryScore, Node, ScoreCall, ScoringRun
from tests.conftest import NO_FAULTS
from tests.engine_support import (
    FACTS_WITH_LATE,
    build_ids,
    conversation_doc,
    make_snapshot,
    node_rows,
    private_refserver,  # noqa: F401  (this module's own server)
    score,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]

WINDOW = 3


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent, conversation_doc(agent.name, facts=FACTS_WITH_LATE, identity=False,
                                                 repeat_key=False))


def expected_score(base_url, snapshot, key, window=WINDOW):
    """The memory's score as docs/scoring.md defines it, computed from the Node rows."""
    nodes = node_rows(snapshot)
    conv = [n for n in nodes if n.section == "conversation"]
    start = next(n.index for n in conv if n.memory_key == key)
    seen, end = 0, len(conv)
    for n in conv[start:]:
        if n.role == "assistant":
            seen += 1
            if seen == window:
                end = n.index + 1
                break
    base = score(base_url, build_ids(nodes, start, end))
    without = score(base_url, build_ids(nodes, start, end, skip=lambda n: n.memory_key == key))
    return max(max(0.0, b - w) for b, w in zip(base, without))


def past_cutoff(snapshot):
    """Keys whose first position lies past 60% of the conversation's tokens."""
    conv = list(Node.objects.filter(snapshot=snapshot, section="conversation").order_by("index"))
    total = sum(n.n_tokens for n in conv)
    running, late = 0, []
    for n in conv:
        running += n.n_tokens
        if n.memory_key and running > 0.6 * total and n.memory_key not in late:
            late.append(n.memory_key)
    return late


def test_it_scores_due_memories_and_sets_their_first_weight(agent, snapshot, ref):
    late = past_cutoff(snapshot)
    assert late, "the snapshot must have memories past the cutoff"

    run = run_inline(start_run(snapshot, "incremental", params={"response_window": WINDOW, "limit": 20}))

    assert run.status == ScoringRun.Status.SUCCEEDED
    scored = {m.key: m for m in Memory.objects.filter(agent=agent, weight__isnull=False)}
    assert set(scored) == {k for k, *_ in FACTS_WITH_LATE} - set(late)
    for key, memory in scored.items():
        expected = expected_score(ref.base_url, snapshot, key)
        assert memory.weight == pytest.approx(expected, abs=1e-9), key
        assert memory.last_scored is not None
        history = MemoryScore.objects.get(memory=memory)
        assert history.run_id == run.pk
        assert history.score == history.weight == memory.weight
        assert history.responses == WINDOW
    for key in late:
        assert Memory.objects.get(agent=agent, key=key).last_scored is None
    assert {s["key"] for s in run.result["skipped"]} == set(late)
    assert {s["key"] for s in run.result["scored"]} == set(scored)
    # Two calls per memory, each pair over the memory's own window.
    assert run.calls_total == 2 * len(scored)
    pairs = run.calls.filter(filter=ScoreCall.Filter.SKIP_KEY)
    assert all(c.baseline.range_start == c.range_start for c in pairs)


def test_it_folds_a_new_score_into_the_weight(agent, snapshot, ref):
    alice = Memory.objects.get(agent=agent, key="people/alice")
    alice.weight, alice.last_scored = 10.0, timezone.now() - timedelta(days=2)
    alice.save()
    agent.weight_alpha = 0.25
    agent.save()
    expected = expected_score(ref.base_url, snapshot, "people/alice")

    run = run_inline(start_run(snapshot, "incremental",
                               params={"response_window": WINDOW, "limit": 20, "max_age": 3600}))

    alice.refresh_from_db()
    assert alice.weight == pytest.approx(0.25 * expected + 0.75 * 10.0, abs=1e-9)
    assert alice.last_scored > timezone.now() - timedelta(minutes=1)
    assert list(alice.scores.values_list("run_id", flat=True)) == [run.pk]


def test_it_takes_never_scored_then_oldest_first_up_to_the_limit(agent, snapshot, ref):
    now = timezone.now()
    Memory.objects.filter(agent=agent).update(last_scored=now, weight=1.0)
    Memory.objects.filter(agent=agent, key="people/alice").update(last_scored=now - timedelta(days=3))
    Memory.objects.filter(agent=agent, key="places/office").update(last_scored=now - timedelta(days=9))
    Memory.objects.filter(agent=agent, key="people/bob").update(last_scored=None, weight=None)

    run = start_run(snapshot, "incremental", params={"limit": 2, "max_age": 3600})

    keys = list(run.calls.filter(filter=ScoreCall.Filter.SKIP_KEY).order_by("seq")
                .values_list("memory__key", flat=True))
    assert keys == ["people/bob", "places/office"]


def test_it_leaves_weights_alone_when_the_calls_fail(agent, snapshot, ref):
    old = timezone.now() - timedelta(days=2)
    Memory.objects.filter(agent=agent).update(weight=2.5, last_scored=old)
    ref.control(**{**NO_FAULTS, "fail_rate": 1.0})

    run = run_inline(start_run(snapshot, "incremental", params={"max_age": 3600}))

    assert run.status == ScoringRun.Status.FAILED
    for memory in Memory.objects.filter(agent=agent):
        assert (memory.weight, memory.last_scored) == (2.5, old)
    assert not MemoryScore.objects.exists()


def test_it_scores_the_memories_whose_calls_worked_when_others_fail(agent, snapshot, ref):
    agent.score_concurrency = 1
    agent.save()
    # One at a time, baselines first, two attempts each: the third memory's
    # baseline is calls 3 and 4, and both fail.
    ref.control(**{**NO_FAULTS, "fail_nth": [3, 4]})

    run = run_inline(start_run(snapshot, "incremental", params={"response_window": WINDOW, "limit": 3}))

    assert run.status == ScoringRun.Status.PARTIAL
    keys = list(run.calls.filter(filter=ScoreCall.Filter.SKIP_KEY).order_by("seq")
                .values_list("memory__key", flat=True))
    weighted = set(Memory.objects.filter(agent=agent, weight__isnull=False).values_list("key", flat=True))
    assert weighted == {keys[0], keys[1]}
    assert Memory.objects.get(agent=agent, key=keys[2]).last_scored is None
    assert "baseline" in run.error


def test_it_refuses_a_run_with_nothing_due(agent, snapshot, ref):
    Memory.objects.filter(agent=agent).update(last_scored=timezone.now(), weight=1.0)

    with pytest.raises(ValidationError) as e:
        start_run(snapshot, "incremental", params={"max_age": 3600})

    assert "snapshot" in e.value.message_dict


@pytest.mark.parametrize("due", [1, 2])
def test_it_says_how_many_due_memories_are_too_recent(agent, snapshot, ref, due):
    late = past_cutoff(snapshot)
    assert len(late) >= 2
    Memory.objects.filter(agent=agent).exclude(key__in=late[:due]).update(last_scored=timezone.now(), weight=1.0)

    with pytest.raises(ValidationError) as e:
        start_run(snapshot, "incremental", params={"max_age": 3600})

    said = {1: "the one due memory is too recent", 2: "the 2 due memories are too recent"}[due]
    assert said in e.value.message_dict["snapshot"][0]


def test_it_defaults_its_parameters_from_the_agent(agent, snapshot, ref):
    agent.incremental_max_age, agent.incremental_response_window, agent.incremental_batch = 60, 4, 2
    agent.save()

    run = start_run(snapshot, "incremental")

    assert run.params == {"max_age": 60, "response_window": 4, "limit": 2}
    assert run.calls_total == 4
