"""Exports of windowed runs (issue: cells never to be scored labelled
"missing"): an incremental run scores each memory over its own responses, so
the rest of its row is "not_in_run" (never "missing", which means "not scored
yet"), and the responses before the memory are "unaffected" (exactly 0) as in
a full run; a memory-mode run exports only its memory's window."""

import pytest

from scoring.engine import run_inline, start_run
from scoring.heatmap import export
from scoring.models.runs import RunStatus
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
