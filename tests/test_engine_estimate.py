"""The estimate mode (issue 11): a LASSO surrogate fitted to random ablations,
run in this process against the reference server, checked against the exact
leave-one-out matrix of the same snapshot."""

import numpy as np
import pytest
from django.urls import reverse

from scoring import modes, surrogate
from scoring.context import Outline
from scoring.engine import run_inline, start_run
from scoring.models import CellScore, ScoreCall, ScoringRun
from scoring.modes.estimate import NOT_FITTED, importance_ranking
from scoring.views.display import run_findings
from tests.conftest import NO_FAULTS
from tests.engine_support import (
    before_memories,
    cells_by_key,
    independent_deltas,
    make_snapshot,
    private_refserver,  # noqa: F401  (this module's own server)
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent)


def importance(cells):
    """{key: sum of positive deltas}: the per-memory importance both matrices are ranked by."""
    return {k: sum(max(0.0, d or 0.0) for d in row.values()) for k, row in cells.items()}


def top(scores, n):
    return [k for k, _ in sorted(scores.items(), key=lambda kv: -kv[1])[:n]]


def estimate_run(snapshot, ablations=32, seed=7):
    run = start_run(snapshot, ScoringRun.Mode.ESTIMATE, params={"ablations": ablations, "seed": seed})
    return run_inline(run)


def test_it_finds_the_same_top_memories_as_the_exact_matrix(agent, snapshot, ref):
    run = estimate_run(snapshot)
    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    exact = importance(independent_deltas(ref.base_url, snapshot))
    estimated = importance(cells_by_key(run))
    assert set(estimated) == set(exact)
    assert set(top(estimated, 3)) == set(top(exact, 3)), (estimated, exact)
    assert run.result["calls_used"] == 33 and run.result["exact_calls"] == len(exact) + 1
    assert len(run.result["fit_r2"]) == len(next(iter(cells_by_key(run).values())))


def test_it_records_the_seed_and_each_ablation_and_refits_the_same(agent, snapshot):
    run = estimate_run(snapshot, ablations=16, seed=3)
    calls = ScoreCall.objects.filter(run=run, filter=ScoreCall.Filter.SKIP_KEYS).order_by("seq")
    assert run.params["seed"] == 3 and calls.count() == 16
    keys = Outline(snapshot).keys()
    from scoring.modes.estimate import ablation_masks
    masks = ablation_masks(len(keys), 16, 3)
    assert [c.removed_keys for c in calls] == [[k for k, kept in zip(keys, m) if not kept] for m in masks]
    again = estimate_run(snapshot, ablations=16, seed=3)
    assert cells_by_key(again) == cells_by_key(run)


def test_no_memory_has_an_effect_on_a_response_before_it(agent, snapshot):
    run = estimate_run(snapshot, ablations=16)
    outline = Outline(snapshot)
    index = {e.node_id: e.index for e in outline.entries}
    for cell in CellScore.objects.filter(run=run).select_related("memory"):
        before = index[cell.response_id] < outline.first_position(cell.memory.key)
        if before:
            assert cell.delta == 0.0 and cell.state == CellScore.State.UNAFFECTED
        else:
            assert cell.state == CellScore.State.SCORED


def test_the_command_line_takes_ablations_and_seed(agent, snapshot):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("score", snapshot.pk, "--mode", "estimate", "--ablations", "12", "--seed", "5", "--inline",
                 stdout=out)
    run = ScoringRun.objects.get(mode="estimate")
    assert run.params == {"ablations": 12, "seed": 5}
    assert "ESTIMATE" in out.getvalue()


def test_lasso_recovers_a_sparse_effect_and_leaves_later_memories_at_zero():
    rng = np.random.default_rng(0)
    x = (rng.random((64, 10)) < 0.5).astype(float)
    truth = np.zeros((10, 2))
    truth[2, 0], truth[5, 1], truth[7, 1] = 3.0, 2.0, 1.5
    y = x @ truth + rng.normal(0, 0.05, (64, 2))
    allowed = np.ones((10, 2), dtype=bool)
    allowed[8:, 1] = False  # memory 8 and 9 come after response 1
    effects, r2 = surrogate.fit(x, y, allowed, seed=1)
    assert np.argmax(effects[:, 0]) == 2 and effects[2, 0] == pytest.approx(3.0, abs=0.2)
    assert effects[5, 1] == pytest.approx(2.0, abs=0.2)
    assert effects[8, 1] == 0.0 and effects[9, 1] == 0.0
    assert all(v > 0.9 for v in r2)
    flat, r2_flat = surrogate.fit(x, np.zeros((64, 1)), np.ones((10, 1), dtype=bool))
    assert not flat.any() and r2_flat == [None]


def test_an_estimate_no_call_answered_estimates_nothing_and_says_so(agent, snapshot, ref, fast_retries, cast):
    """Walkthrough: every call failed, and the run page still said "Memories
    estimated 24" and "Cells (estimates) 1,248" beside "Calls fitted 0"."""
    ref.control(**{**NO_FAULTS, "fail_rate": 1.0})
    run = estimate_run(snapshot, ablations=8)
    assert run.status == ScoringRun.Status.FAILED
    assert run.result["memories"] == 0 and run.result["cells"] == 0 and run.result["not_fitted"] == NOT_FITTED
    findings = dict(run_findings(run))
    assert findings["No estimate"] == NOT_FITTED and findings["Memories estimated"] == "0"
    # The cells a memory can change are failed; those before it exactly 0, as in any run.
    before = before_memories(snapshot)
    cells = list(CellScore.objects.filter(run=run).values_list("memory__key", "response_id", "failed", "delta"))
    assert cells and any(before.values())
    for key, response_id, failed, delta in cells:
        assert (failed, delta) == ((False, 0.0) if response_id in before[key] else (True, None)), key
    assert run.result["failed_cells"] == sum(failed for _, _, failed, _ in cells)
    assert importance_ranking(run) == []  # not every memory "ranked" at 0
    said = []
    modes.get(run.mode).report(run, said.append)
    assert said[0].startswith("NO ESTIMATE: fewer than 4 calls answered, too few to fit")
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk])).text
    assert "Too few calls answered to fit an estimate" in page and "the fewer, the less certain" not in page
