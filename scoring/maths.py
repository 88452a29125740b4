"""Every formula of memscore, in one place, with no Django in it.

A response's score is the sum of the log-probabilities of its tokens (nats,
≤ 0). Leaving a memory out of the context gives a second score; their
difference is the *delta*:

    delta = baseline - without

Positive: the memory made the response more likely (it helped). Negative: the
response is more likely without it. Everything the product shows is built
from deltas with the functions below. SQL and JavaScript that must repeat one
of them name the function they mirror, and tests check they agree
(tests/test_maths_mirrors.py).
"""

import math

# A divergence at or below this counts as zero (as in the reference): the
# noise of summing thousands of float32 log-probabilities.
ZERO_THRESHOLD = 0.01

# Harmful: leaving the memory out makes the responses more likely by more
# than this many nats, on balance, i.e. the signed deltas of the cells
# considered sum below -HARMFUL_NATS. The same rule judges a memory (all its
# scored cells) and a single cell (one response). Small negative deltas are
# common (any extra text dilutes the context a little), so one number is
# kept for both rather than one per page.
HARMFUL_NATS = 0.5

# "Never matters": no cell above ZERO_THRESHOLD over at least this many scored
# responses (fewer are not enough evidence).
NEVER_MATTERS_MIN_RESPONSES = 10


def delta(baseline, without):
    """Signed change of one response's log-probability when the memory is left out."""
    return baseline - without


def divergence(baseline, without):
    """The reference's divergence: the delta clamped at zero (a memory never
    counts as *negative* importance)."""
    return max(0.0, baseline - without)


def divergences(baselines, withouts):
    """divergence() of each response of a pair of calls, in order."""
    return [divergence(b, w) for b, w in zip(baselines, withouts)]


def cell_importance(delta):
    """A cell's displayed importance: the delta when above ZERO_THRESHOLD, else
    0; None (failed, not scored) stays None.

    Mirrored by: views/memories.py (`_cell_importance_sql`) and
    static/memscore/heatmap.js (`importance`)."""
    if delta is None or (isinstance(delta, float) and math.isnan(delta)):
        return None
    return delta if delta > ZERO_THRESHOLD else 0.0


def memory_importance(deltas):
    """One-memory mode's importance (the reference's): the sum of the
    divergences over the memory's window of responses."""
    return sum(max(0.0, d) for d in deltas)


def importance_sum(deltas):
    """A memory's importance over a run: the sum of its cells' importances
    (failed cells, None, left out)."""
    return sum(cell_importance(d) for d in deltas if d is not None)


def importance_max(deltas):
    """The largest cell importance of a memory, None when no cell was scored."""
    values = [cell_importance(d) for d in deltas if d is not None]
    return max(values) if values else None


def window_score(baselines, withouts):
    """Incremental mode's score of a memory: the largest divergence in its
    window of responses (0 for an empty window), as in the reference."""
    return max(divergences(baselines, withouts), default=0.0)


def ewma(previous, score, alpha):
    """A memory's new weight: an exponentially weighted moving average of its
    scores; the first score (previous None) becomes the weight."""
    if previous is None:
        return score
    return alpha * score + (1 - alpha) * previous


def is_harmful(net_delta):
    """Whether cells whose signed deltas sum to `net_delta` are harmful: the
    responses are more likely without the memory by more than HARMFUL_NATS.
    For one cell, its delta; for a memory, the sum over its scored cells.

    Mirrored by: views/memories.py (`harmful` flag from the SQL sum) and
    static/memscore/heatmap.js (`isHarmful`)."""
    return net_delta is not None and net_delta < -HARMFUL_NATS


def never_matters(scored, max_importance):
    """Whether a memory with `scored` cells whose largest importance is
    `max_importance` never matters: enough evidence, and no cell above zero."""
    return scored >= NEVER_MATTERS_MIN_RESPONSES and (max_importance or 0.0) <= ZERO_THRESHOLD


def memory_flags(scored, max_importance, net_delta):
    """The flags the memories pages show: "never" and/or "harmful"."""
    flags = []
    if never_matters(scored, max_importance):
        flags.append("never")
    if scored and is_harmful(net_delta):
        flags.append("harmful")
    return flags
