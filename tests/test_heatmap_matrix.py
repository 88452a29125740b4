"""load_matrix: a run's memories × responses as plain lists, in three queries."""

import pytest

from scoring.engine import run_inline, start_run
from scoring.heatmap.matrix import load_matrix, response_numbers
from scoring.models import CellScore, Node
from tests.conftest import NO_FAULTS
from tests.engine_support import before_memories, make_snapshot, private_refserver  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]


def test_it_lays_out_a_full_run(agent, ref, django_assert_num_queries):
    snapshot = make_snapshot(agent)
    agent.score_concurrency = 1
    agent.save()
    # The fourth key (places/office) fails: calls 5 and 6, one at a time.
    ref.control(**{**NO_FAULTS, "fail_nth": [5, 6]})
    run = run_inline(start_run(snapshot, "full"))

    # The calls, where their memories first appear (rows in context order), the responses, the cells.
    with django_assert_num_queries(4):
        matrix = load_matrix(run)

    keys = [m["key"] for m in matrix["memories"]]
    assert keys == list(run.calls.exclude(seq=0).order_by("seq").values_list("memory__key", flat=True))
    responses = list(Node.objects.responses().filter(snapshot=snapshot).order_by("index"))
    assert matrix["responses"] == [
        {"id": r.id, "number": k, "index": r.index, "text": r.text} for k, r in enumerate(responses, start=1)
    ]
    cells = {(c.memory_id, c.response_id): c.delta for c in CellScore.objects.filter(run=run)}
    assert len(cells) == len(keys) * len(responses)
    for memory, row in zip(matrix["memories"], matrix["deltas"]):
        assert row == [cells[memory["id"], r.id] for r in responses]
    # Its cells are unknown, but for those before the memory: exactly 0 (unaffected), failed call or not.
    office = matrix["deltas"][keys.index("places/office")]
    before = before_memories(snapshot)["places/office"]
    assert before and len(before) < len(responses)
    assert office == [0.0 if r.id in before else None for r in responses]
    assert any(d is not None and d < 0 for row in matrix["deltas"] for d in row)


def test_it_shows_only_the_window_of_a_memory_run(agent, ref):
    snapshot = make_snapshot(agent)
    run = run_inline(start_run(snapshot, "memory", params={"key": "projects/atlas"}))
    call = run.calls.get(seq=1)

    matrix = load_matrix(run)

    assert [m["key"] for m in matrix["memories"]] == ["projects/atlas"]
    assert [r["index"] for r in matrix["responses"]] == list(
        Node.objects.responses().filter(snapshot=snapshot, index__gte=call.range_start,
                                        index__lt=call.range_end).order_by("index")
        .values_list("index", flat=True)
    )
    assert all(d is not None for d in matrix["deltas"][0])
    # Response #k counts every assistant response of the snapshot, inside the window or not.
    all_indices = list(Node.objects.responses().filter(snapshot=snapshot).order_by("index")
                       .values_list("index", flat=True))
    assert [r["number"] for r in matrix["responses"]] == [all_indices.index(r["index"]) + 1
                                                         for r in matrix["responses"]]
    assert response_numbers(snapshot.pk, [all_indices[-1]]) == {all_indices[-1]: len(all_indices)}

