"""scoring.maths: every formula of the product, with examples and properties."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring import maths
from scoring.maths import HARMFUL_NATS, NEVER_MATTERS_MIN_RESPONSES, ZERO_THRESHOLD

# Log-probabilities and deltas of real responses: far from float overflow.
nats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
# A cell as stored: a delta, or None (failed) / NaN (failed, in numpy arrays).
cells = st.one_of(nats, st.none(), st.just(math.nan))
alphas = st.floats(min_value=0.0, max_value=1.0)


def test_the_thresholds_are_the_documented_ones():
    assert ZERO_THRESHOLD == 0.01
    assert HARMFUL_NATS == 0.5
    assert NEVER_MATTERS_MIN_RESPONSES == 10


def test_delta_is_baseline_minus_without():
    assert maths.delta(-10.0, -12.5) == 2.5
    assert maths.delta(-12.5, -10.0) == -2.5


def test_divergence_clamps_at_zero():
    assert maths.divergence(-10.0, -12.5) == 2.5
    assert maths.divergence(-12.5, -10.0) == 0.0
    assert maths.divergences([-1.0, -5.0], [-3.0, -4.0]) == [2.0, 0.0]
    assert maths.divergences([], []) == []


@given(nats, nats)
def test_divergence_is_the_non_negative_part_of_the_delta(baseline, without):
    value = maths.divergence(baseline, without)
    assert value >= 0
    assert value == max(0.0, maths.delta(baseline, without))


def test_cell_importance_zeroes_noise_and_keeps_failures_unknown():
    assert maths.cell_importance(None) is None
    assert maths.cell_importance(math.nan) is None
    assert maths.cell_importance(-3.0) == 0.0
    assert maths.cell_importance(0.01) == 0.0
    assert maths.cell_importance(0.0100001) == 0.0100001


@given(nats)
def test_cell_importance_is_zero_or_above_the_threshold(delta):
    value = maths.cell_importance(delta)
    assert value == 0.0 or value > ZERO_THRESHOLD
    assert value in (0.0, delta)


def test_better_without_is_beyond_noise():
    assert maths.is_better_without(-0.02)
    assert not maths.is_better_without(-0.01)
    assert not maths.is_better_without(0.5)
    assert not maths.is_better_without(None)
    assert not maths.is_better_without(math.nan)


def test_memory_importance_sums_the_divergences():
    assert maths.memory_importance([1.0, -2.0, 0.005]) == 1.005
    assert maths.memory_importance([]) == 0


def test_importance_sum_and_max_leave_failed_cells_out():
    deltas = [2.0, 0.5, 0.005, -3.0, None, math.nan]
    assert maths.importance_sum(deltas) == 2.5
    assert maths.importance_max(deltas) == 2.0
    assert maths.importance_max([-1.0, 0.0]) == 0.0
    assert maths.importance_max([None, math.nan]) is None
    assert maths.importance_sum([None]) == 0


@given(st.lists(cells))
def test_importance_sum_bounds_importance_max(deltas):
    high, total = maths.importance_max(deltas), maths.importance_sum(deltas)
    if any(d is not None and not math.isnan(d) for d in deltas):
        assert total >= high >= 0
    else:
        assert high is None and total == 0


def test_net_delta_sums_the_signed_scored_deltas():
    assert maths.net_delta([1.0, -2.5, None, math.nan]) == -1.5
    assert maths.net_delta([]) == 0


def test_window_score_is_the_largest_divergence():
    assert maths.window_score([-1.0, -2.0, -3.0], [-1.5, -4.0, -1.0]) == 2.0
    assert maths.window_score([], []) == 0.0
    assert maths.window_score([-1.0], [0.0]) == 0.0


@given(st.lists(st.tuples(nats, nats)))
def test_window_score_is_the_max_of_the_divergences(pairs):
    baselines, withouts = [b for b, _ in pairs], [w for _, w in pairs]
    assert maths.window_score(baselines, withouts) == max(maths.divergences(baselines, withouts), default=0.0)


def test_ewma_folds_a_score_into_the_weight():
    assert maths.ewma(None, 1.5, 0.3) == 1.5
    assert maths.ewma(1.0, 2.0, 0.25) == 1.25
    assert maths.ewma(1.0, 2.0, 0.0) == 1.0
    assert maths.ewma(1.0, 2.0, 1.0) == 2.0
    # Float rounding alone would give 3.0000000000000004.
    assert maths.ewma(3.0, 3.0, 0.1) == 3.0


@given(nats, alphas)
def test_the_first_score_becomes_the_weight(score, alpha):
    assert maths.ewma(None, score, alpha) == score


@given(nats, nats, alphas)
def test_ewma_stays_between_the_weight_and_the_score(previous, score, alpha):
    assert min(previous, score) <= maths.ewma(previous, score, alpha) <= max(previous, score)


def test_is_harmful_past_half_a_nat():
    assert maths.is_harmful(-0.6)
    assert not maths.is_harmful(-0.5)
    assert not maths.is_harmful(0.0)
    assert not maths.is_harmful(None)
    assert not maths.is_harmful(math.nan)


@given(nats, nats)
def test_is_harmful_is_monotone(a, b):
    low, high = min(a, b), max(a, b)
    if maths.is_harmful(high):
        assert maths.is_harmful(low)


@given(st.lists(nats, min_size=1))
def test_a_memory_and_a_cell_are_judged_by_one_rule(deltas):
    # A memory of one cell is harmful exactly when that cell is.
    assert maths.is_harmful(maths.net_delta(deltas[:1])) == maths.is_harmful(deltas[0])
    assert maths.is_harmful(maths.net_delta(deltas)) == (sum(deltas) < -HARMFUL_NATS)


@pytest.mark.parametrize(
    "scored, max_importance, expected",
    [
        (10, 0.01, True),
        (10, None, True),
        (10, 0.0100001, False),
        (9, 0.0, False),  # too few responses to say
    ],
)
def test_never_matters_needs_enough_evidence(scored, max_importance, expected):
    assert maths.never_matters(scored, max_importance) is expected


def test_memory_flags():
    assert maths.memory_flags(12, 0.0, -0.72) == ["never", "harmful"]
    assert maths.memory_flags(12, 2.0, 0.5) == []
    assert maths.memory_flags(1, 0.3, 0.3) == []
    assert maths.memory_flags(12, 3.0, -1.5) == ["harmful"]
    # Nothing scored: nothing known, neither flag.
    assert maths.memory_flags(0, None, None) == []


@given(st.integers(min_value=0, max_value=5000), st.one_of(st.none(), nats), st.one_of(st.none(), nats))
def test_memory_flags_are_the_two_rules(scored, max_importance, net):
    flags = maths.memory_flags(scored, max_importance, net)
    assert ("never" in flags) == maths.never_matters(scored, max_importance)
    assert ("harmful" in flags) == (scored > 0 and maths.is_harmful(net))


def test_importance_is_unknown_when_cells_failed_and_none_was_measured():
    from scoring.maths import importance_unknown

    # (failed cells, measured cells): unaffected ones alone say nothing of the failed rest.
    assert [importance_unknown(f, m) for f, m in [(0, 0), (3, 0), (3, 1), (0, 5)]] == [False, True, False, False]
