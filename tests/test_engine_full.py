"""The full matrix, run in this process against a real reference server.

Every cell is checked against leave-one-out deltas computed here from the
Node rows with direct /score calls; failures injected by the server must be
retried, or recorded as failed cells, never as zeros.
"""

import pytest

from scoring.context import snapshot_tokens
from scoring.engine import results, run_inline, start_run
from scoring.models import CellScore, Memory, ScoreCall, ScoringRun
from scoring.models.runs import CellState
from scoring.views.display import run_findings
from tests.conftest import NO_FAULTS
from tests.engine_support import (
    before_memories,
    cells_by_key,
    conversation_doc,
    independent_deltas,
    make_snapshot,
    private_refserver,  # noqa: F401  (this module's own server)
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_retries(fast_retries, settings):
    # Three attempts: the fault tests below fail a call on each of them.
    settings.MEMSCORE_CALL_ATTEMPTS = 3


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent)


def assert_cells_match(run, expected, failed_keys=()):
    """Every cell as `expected`; a failed key's cells unknown (None), except
    those before the memory: exactly 0, unaffected, as in any run."""
    got = cells_by_key(run)
    before = before_memories(run.snapshot)
    states = dict(((k, r), state) for k, r, state in run.cells.values_list("memory__key", "response_id", "state"))
    assert set(got) == set(expected)
    for key, row in expected.items():
        assert set(got[key]) == set(row), key
        for response_id, delta in row.items():
            if key in failed_keys and response_id in before[key]:
                assert got[key][response_id] == 0 == delta, key
                assert states[key, response_id] == CellState.UNAFFECTED, key
            elif key in failed_keys:
                assert got[key][response_id] is None, key
                assert states[key, response_id] == CellState.FAILED, key
            else:
                assert got[key][response_id] == pytest.approx(delta, abs=1e-9), key


def assert_failed_but_before_memories(run):
    """Every cell failed but those before their memory: unaffected, exactly 0
    (the server's failure cannot make them unknown: they were never asked)."""
    before = before_memories(run.snapshot)
    assert any(before.values()), "the snapshot has responses before some memory"
    for key, response_id, delta, failed, state in run.cells.values_list(
            "memory__key", "response_id", "delta", "failed", "state"):
        if response_id in before[key]:
            assert (delta, failed, state) == (0, False, CellState.UNAFFECTED), (key, response_id)
        else:
            assert (delta, failed, state) == (None, True, CellState.FAILED), (key, response_id)


def test_it_scores_every_cell_as_the_leave_one_out_delta(agent, snapshot, ref):
    expected = independent_deltas(ref.base_url, snapshot)

    run = run_inline(start_run(snapshot, "full"))

    assert run.status == ScoringRun.Status.SUCCEEDED
    assert run.error == ""
    assert_cells_match(run, expected)
    # Memories that matter show up: each fact's response depends on its memory.
    assert max(expected["people/alice"].values()) > 1.0
    assert run.started_at and run.finished_at and run.started_at <= run.finished_at
    assert run.tokens_scored == sum(run.calls.values_list("tokens", flat=True)) > 0


def test_it_removes_each_key_once_even_when_it_appears_apart(agent, snapshot):
    run = start_run(snapshot, "full")

    keys = list(
        run.calls.filter(filter=ScoreCall.Filter.SKIP_KEY).order_by("seq").values_list("memory__key", flat=True)
    )
    # identity first, then the conversation in order of first appearance;
    # people/alice and identity/sam come back later in the conversation.
    assert keys == [
        "identity/core", "identity/sam", "people/alice", "places/office", "people/bob",
        "projects/atlas", "habits/sam", "people/carol",
    ]
    baseline = run.calls.get(seq=0)
    assert baseline.filter == ScoreCall.Filter.NONE and baseline.baseline is None
    assert run.calls_total == run.calls.count() == len(keys) + 1
    assert set(run.calls.exclude(seq=0).values_list("baseline", flat=True)) == {baseline.pk}


@pytest.mark.parametrize("mode", ["http500", "error200", "drop", "hang"])
def test_it_retries_a_transient_failure_and_gets_the_cells_right(agent, snapshot, ref, mode):
    expected = independent_deltas(ref.base_url, snapshot)
    agent.score_concurrency = 1
    agent.request_timeout = 1.0
    agent.save()
    # Call 1 is the baseline, call 2 the first key's first attempt: both fail once.
    ref.control(**{**NO_FAULTS, "fail_mode": mode, "fail_nth": [1, 3], "hang_seconds": 5})

    run = run_inline(start_run(snapshot, "full"))

    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    assert_cells_match(run, expected)
    assert ref.stats()["calls"]["score"] == run.calls_total + 2
    assert sorted(run.calls.values_list("attempts", flat=True)) == [1] * run.calls_total


def test_it_marks_the_cells_of_a_call_that_keeps_failing_as_failed(agent, snapshot, ref):
    expected = independent_deltas(ref.base_url, snapshot)
    agent.score_concurrency = 1
    agent.save()
    # One at a time: calls 1, 2, 3 are the baseline and the first two keys;
    # the third key (people/alice) fails on all three of its attempts.
    ref.control(**{**NO_FAULTS, "fail_nth": [4, 5, 6]})

    run = run_inline(start_run(snapshot, "full"))

    assert run.status == ScoringRun.Status.PARTIAL
    assert run.calls_failed == 1 and run.calls_done == run.calls_total - 1
    assert "people/alice" in run.error and "HTTP 500" in run.error
    assert_cells_match(run, expected, failed_keys={"people/alice"})
    alice = CellScore.objects.filter(run=run, memory__key="people/alice")
    assert alice.count() == 7 and all(c.failed and c.delta is None for c in alice)
    failed_call = run.calls.get(memory__key="people/alice")
    assert failed_call.status == ScoreCall.Status.FAILED and "injected failure" in failed_call.error
    # The findings count what was scored, and what failed apart.
    memories = run.calls.filter(filter="skip_key").count()
    assert run.result == {"memories": memories - 1, "failed_memories": 1,
                          "cells": run.cells.count() - 7, "failed_cells": 7}


def test_it_fails_the_run_and_every_cell_when_the_baseline_keeps_failing(agent, snapshot, ref):
    agent.score_concurrency = 1
    agent.save()
    ref.control(**{**NO_FAULTS, "fail_nth": [1, 2, 3]})

    run = run_inline(start_run(snapshot, "full"))

    assert run.status == ScoringRun.Status.FAILED
    assert "baseline" in run.error
    # The other calls were not sent: nothing can be compared with a failed baseline.
    assert ref.stats()["calls"]["score"] == 3
    assert run.calls_failed == run.calls_total and run.calls_done == 0
    cells = CellScore.objects.filter(run=run)
    assert cells.count() == 8 * 7
    assert_failed_but_before_memories(run)


@pytest.mark.parametrize("failing, status", [
    ([4, 5, 6], ScoringRun.Status.PARTIAL),  # people/alice's call, on each attempt
    ([1, 2, 3], ScoringRun.Status.FAILED),   # the baseline: every other call fails with it
])
def test_its_failed_calls_sent_again_complete_the_matrix(agent, snapshot, ref, failing, status):
    expected = independent_deltas(ref.base_url, snapshot)
    agent.score_concurrency = 1
    agent.save()
    ref.control(**{**NO_FAULTS, "fail_nth": failing})
    run = run_inline(start_run(snapshot, "full"))
    assert run.status == status
    failed, done = run.calls_failed, run.calls_done
    ref.control(**NO_FAULTS)

    started = run.started_at
    assert run.retry_failed(actor_name="test", forget=("failed_memories", "failed_cells")) == failed
    assert run.status == ScoringRun.Status.QUEUED and run.calls_failed == 0 and run.calls_done == done
    # While it waits, it no longer counts as failed what will be sent again.
    assert "failed" not in str(run_findings(run))
    assert not run.cells.filter(failed=True).exists()
    assert run.calls.filter(status=ScoreCall.Status.PENDING).count() == failed
    run = run_inline(run)

    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    assert run.error == "" and run.calls_done == run.calls_total
    assert run.started_at == started, "it keeps when it first started"
    assert_cells_match(run, expected)
    assert run.result["memories"] == run.calls.filter(filter="skip_key").count()
    assert (run.result["failed_memories"], run.result["failed_cells"]) == (0, 0)
    assert "failed" not in str(run_findings(run))
    # Only what failed was sent again.
    assert ref.stats()["calls"]["score"] == failed
    # A run with nothing failed has nothing to send again.
    assert run.retry_failed() == 0 and run.status == ScoringRun.Status.SUCCEEDED


def test_it_keeps_consistent_cells_under_random_failures(agent, snapshot, ref):
    expected = independent_deltas(ref.base_url, snapshot)
    agent.score_concurrency = 4
    agent.save()
    ref.control(**{**NO_FAULTS, "fail_rate": 0.5})

    run = run_inline(start_run(snapshot, "full"))

    assert not run.is_active
    failed_keys = set(
        run.calls.filter(status=ScoreCall.Status.FAILED).values_list("memory__key", flat=True)
    )
    if None in failed_keys:  # the baseline failed: every cell failed
        assert run.status == ScoringRun.Status.FAILED
        assert not CellScore.objects.filter(run=run, failed=False).exists()
    else:
        assert run.status == (ScoringRun.Status.PARTIAL if failed_keys else ScoringRun.Status.SUCCEEDED)
        assert_cells_match(run, expected, failed_keys=failed_keys)
    assert run.calls_done + run.calls_failed == run.calls_total


def test_it_fails_a_call_whose_scores_do_not_match_its_responses(agent, ref):
    doc = conversation_doc(agent.name)
    # A user pasted ChatML: the server sees one more assistant response than
    # the snapshot has, so no score can be matched to a response.
    doc["conversation"][0]["text"] = "look: <|im_start|>assistant\nfake<|im_end|>"
    snapshot = make_snapshot(agent, doc)

    run = run_inline(start_run(snapshot, "full"))

    assert run.status == ScoringRun.Status.FAILED
    assert "8 scores for 7 responses" in run.error
    assert_failed_but_before_memories(run)


def test_it_respects_the_agents_concurrency(agent, tmp_path):
    from refserver.testing import run_refserver

    snapshot = make_snapshot(agent, extra_memories=6)
    # A fresh server sees only the score calls (the import's /tokenize calls
    # run 16 at a time and would count as concurrency).
    with run_refserver(tmp_path / "fresh", "--latency-ms", "100") as fresh:
        agent.base_url = fresh.base_url
        agent.score_concurrency = 3
        agent.save()

        run = run_inline(start_run(snapshot, "full"))

        assert run.status == ScoringRun.Status.SUCCEEDED
        stats = fresh.stats()
    assert stats["calls"]["score"] == run.calls_total == 15
    assert 2 <= stats["max_concurrent_seen"] <= 3


def test_it_never_stores_a_cell_twice_when_a_pair_is_settled_again(agent, snapshot):
    run = run_inline(start_run(snapshot, "full"))
    count = CellScore.objects.filter(run=run).count()
    baseline = run.calls.get(seq=0)
    for call in run.calls.exclude(seq=0).select_related("memory"):
        CellScore.insert_rows(results.cell_rows(run, call, baseline, snapshot_tokens(snapshot)))

    assert CellScore.objects.filter(run=run).count() == count == 8 * 7


def test_cells_beyond_one_statement_are_all_inserted_once(agent, snapshot):
    # insert_rows writes many rows a statement, as many as the database's
    # parameter limit allows (166 on SQLite): more than that takes several.
    run = run_inline(start_run(snapshot, "full"))
    memories = list(Memory.objects.filter(agent=agent).values_list("pk", flat=True))
    responses = list(snapshot.nodes.filter(role="assistant").values_list("pk", flat=True))
    other = run_inline(start_run(snapshot, "full"))
    CellScore.objects.filter(run=other).delete()
    rows = [CellScore.scored_row(other.pk, m, r, 0.25) for m in memories for r in responses] * 30
    assert len(rows) > 1000

    CellScore.insert_rows(rows)
    CellScore.insert_rows(rows[:500])

    assert CellScore.objects.filter(run=other).count() == len(memories) * len(responses)
    assert CellScore.objects.filter(run=run).count() == 8 * 7


def test_it_records_the_weightless_full_run_without_touching_weights(agent, snapshot):
    run_inline(start_run(snapshot, "full"))

    assert not Memory.objects.filter(agent=agent, weight__isnull=False).exists()
