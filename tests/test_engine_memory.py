"""One-memory mode: the memory's window, its cells and its importance."""

import pytest
from django.core.exceptions import ValidationError

from scoring.engine import run_inline, start_run
from scoring.models import Node, ScoreCall, ScoringRun
from tests.engine_support import (
    cells_by_key,
    independent_deltas,
    make_snapshot,
    private_refserver,  # noqa: F401  (this module's own server)
)

pytestmark = pytest.mark.django_db(transaction=True)


def first_index(snapshot, key):
    return Node.objects.filter(snapshot=snapshot, section="conversation", memory_key=key).order_by("index")[0].index


def test_it_scores_a_memory_over_the_responses_after_it(agent, ref):
    snapshot = make_snapshot(agent)
    start = first_index(snapshot, "places/office")
    end = Node.objects.filter(snapshot=snapshot, section="conversation").count()
    expected = independent_deltas(ref.base_url, snapshot, start, end)["places/office"]

    run = run_inline(start_run(snapshot, "memory", params={"key": "places/office"}))

    assert run.status == ScoringRun.Status.SUCCEEDED
    assert run.calls_total == 2
    calls = list(run.calls.order_by("seq"))
    assert [(c.filter, c.range_start, c.range_end) for c in calls] == [
        (ScoreCall.Filter.NONE, start, end), (ScoreCall.Filter.SKIP_KEY, start, end)
    ]
    got = cells_by_key(run)
    assert list(got) == ["places/office"]
    assert got["places/office"] == pytest.approx(expected, abs=1e-9)
    importance = sum(max(0.0, d) for d in expected.values())
    assert run.result["key"] == "places/office"
    assert run.result["importance"] == pytest.approx(importance, abs=1e-9)
    assert importance > 1.0
    assert run.result["responses"] == len(expected)


def test_it_starts_an_identity_memory_at_the_beginning(agent, ref):
    snapshot = make_snapshot(agent)

    run = start_run(snapshot, "memory", params={"key": "identity/core"})

    assert run.calls.get(seq=0).range_start == 0


def test_it_stops_after_the_fiftieth_response(agent, ref):
    snapshot = make_snapshot(agent, turns=70)
    start = first_index(snapshot, "people/bob")
    responses = list(
        Node.objects.responses().filter(snapshot=snapshot, index__gte=start).order_by("index")
    )
    assert len(responses) > 50

    run = run_inline(start_run(snapshot, "memory", params={"key": "people/bob"}))

    assert run.calls.get(seq=1).range_end == responses[49].index + 1
    assert run.cells.count() == 50
    assert set(run.cells.values_list("response_id", flat=True)) == {r.id for r in responses[:50]}


def test_it_refuses_a_key_that_is_not_in_the_snapshot(agent, ref):
    snapshot = make_snapshot(agent)

    with pytest.raises(ValidationError) as e:
        start_run(snapshot, "memory", params={"key": "people/nobody"})

    assert "key" in e.value.message_dict
    assert "people/nobody" in e.value.message_dict["key"][0]
    assert not ScoringRun.objects.exists()


def test_it_needs_a_key(agent, ref):
    snapshot = make_snapshot(agent)

    with pytest.raises(ValidationError) as e:
        start_run(snapshot, "memory", params={})

    assert "key" in e.value.message_dict


def test_it_starts_a_memory_also_in_identity_where_the_conversation_shows_it(agent, ref):
    snapshot = make_snapshot(agent)  # identity/sam comes back late in the conversation

    run = start_run(snapshot, "memory", params={"key": "identity/sam"})

    assert run.calls.get(seq=0).range_start == first_index(snapshot, "identity/sam") > 0
