"""Exports of windowed runs (issue: cells never to be scored labelled
"missing"): an incremental run scores each memory over its own responses, so
the rest of its row is "not_in_run" (never "missing", which means "not scored
yet"), and the responses before the memory are "unaffected" (exactly 0) as in
a full run; a memory-mode run exports only its memory's window."""

import json

import pytest
from django.urls import reverse

from scoring.engine import run_inline, start_run
from scoring.heatmap import export
from scoring.heatmap.payload import pack
from scoring.models.runs import RunStatus
from tests.conftest import NO_FAULTS
from tests.engine_support import (
    FACTS,
    conversation_doc,
    make_snapshot,
    private_refserver,  # noqa: F401  (this module's own server)
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent, conversation_doc(agent.name, facts=FACTS, identity=False, repeat_key=False))


def states(run):
    found = {}
    for cell in export.cells(run):
        found.setdefault(cell["memory_key"], []).append((cell["response_index"], cell["state"], cell["delta"]))
    return found


def test_an_incremental_export_names_cells_outside_a_memorys_window(snapshot):
    run = run_inline(start_run(snapshot, "incremental", params={"response_window": 1, "limit": 3}))
    assert run.status == RunStatus.SUCCEEDED
    rows = states(run)
    assert len(rows) >= 2
    assert all(state != export.MISSING for row in rows.values() for _, state, _ in row)
    windows = {c.memory.key: (c.range_start, c.range_end) for c in run.calls.filter(filter="skip_key")}
    for key, row in rows.items():
        start, end = windows[key]
        for index, state, delta in row:
            if index < start:
                assert (state, delta) == (export.UNAFFECTED, 0.0)
            elif index < end:
                assert state == export.SCORED
            else:
                assert (state, delta) == (export.NOT_IN_RUN, None)
    assert any(state == export.NOT_IN_RUN for row in rows.values() for _, state, _ in row)
    assert any(state == export.UNAFFECTED for row in rows.values() for _, state, _ in row)


def test_a_memory_export_lists_only_that_memorys_window(snapshot):
    run = run_inline(start_run(snapshot, "memory", params={"key": "people/alice"}))
    rows = states(run)
    assert list(rows) == ["people/alice"]
    assert {state for _, state, _ in rows["people/alice"]} == {export.SCORED}


def payload_states(run):
    """{(memory key, response index): state} as the heatmap draws it (payload.pack)."""
    data = json.loads(pack(run))
    missing, outside, unaffected = set(), set(), set()
    for runs, into in ((data["missing"], missing), (data["not_in_run"], outside), (data["unaffected"], unaffected)):
        for start, length in runs:
            into.update(range(start, start + length))
    found = {}
    for i, key in enumerate(data["keys"]):
        for j, index in enumerate(data["response_index"]):
            k = i * data["cols"] + j
            found[key, index] = ("missing" if k in missing else "not_in_run" if k in outside
                                 else "unaffected" if k in unaffected
                                 else "failed" if data["values"][k] is None else "scored")
    return found


def export_states(run):
    # The heatmap draws each state apart, as the export names it.
    return {(cell["memory_key"], cell["response_index"]): cell["state"] for cell in export.cells(run)}


def cell_page(cast, run, key, index):
    memory = run.calls.get(filter="skip_key", memory__key=key).memory
    response = run.snapshot.nodes.get(index=index)
    page = cast.client_for(cast.viewer).get(reverse("heatmap_cell", args=[run.pk, memory.pk, response.pk]),
                                            HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    return page.text


def test_the_heatmap_and_its_cell_pages_agree_with_the_export_on_an_incremental_run(snapshot, cast):
    run = run_inline(start_run(snapshot, "incremental", params={"response_window": 1, "limit": 3}))
    drawn = payload_states(run)
    assert drawn == export_states(run)
    # Before a memory's window: the beige "unaffected", not grey "not scored".
    for call in run.calls.filter(filter="skip_key").select_related("memory"):
        before = [index for key, index in drawn if key == call.memory.key and index < call.range_start]
        after = [index for key, index in drawn if key == call.memory.key and index >= call.range_end]
        if before and after:
            break
    assert before and after
    assert {drawn[call.memory.key, index] for index in before} == {"unaffected"}
    assert "before the memory: unaffected" in cell_page(cast, run, call.memory.key, before[0])
    assert "not in this run" in cell_page(cast, run, call.memory.key, after[0])


def test_a_failed_incremental_calls_cells_before_its_window_stay_unaffected(snapshot, agent, ref, cast):
    """They come before the memory: exactly 0 whatever its call did, as in a
    full run (a walkthrough read them as failed, and the findings counted
    them among the failed cells)."""
    agent.score_concurrency = 1
    agent.save()
    run = start_run(snapshot, "incremental", params={"response_window": 1, "limit": 3})
    # One call at a time, baselines first: the last call (a memory's) fails
    # on every attempt.
    last = run.calls_total
    ref.control(**{**NO_FAULTS, "fail_nth": [last, last + 1, last + 2]})
    run = run_inline(run)
    failed = run.calls.get(status="failed")
    assert failed.filter == "skip_key" and failed.range_start > 0
    key = failed.memory.key
    rows = states(run)[key]
    before = [(state, delta) for index, state, delta in rows if index < failed.range_start]
    assert before and set(before) == {(export.UNAFFECTED, 0.0)}
    inside = [(state, delta) for index, state, delta in rows if index >= failed.range_start]
    assert inside and (export.FAILED, None) in inside, "the window's own cells are failed, never 0"
    assert payload_states(run) == export_states(run)
    index = next(index for index, _, _ in rows if index < failed.range_start)
    page = cell_page(cast, run, key, index)
    assert "before the memory: unaffected" in page and "failed" not in page
