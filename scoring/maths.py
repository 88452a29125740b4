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
import re

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
    return max(0.0, delta(baseline, without))


def divergences(baselines, withouts):
    """divergence() of each response of a pair of calls, in order."""
    return [divergence(b, w) for b, w in zip(baselines, withouts)]


def cell_importance(delta):
    """A cell's displayed importance: the delta when above ZERO_THRESHOLD, else
    0; None or NaN (failed, not scored) stays None.

    Mirrored by: views/memories.py (`importance_sql`) and
    static/memscore/heatmap.js (`cellImportance`)."""
    if not _scored(delta):
        return None
    return delta if delta > ZERO_THRESHOLD else 0.0


def is_better_without(delta):
    """Whether one response is more likely without the memory beyond noise
    (the delta below -ZERO_THRESHOLD): shown, but harmful only past
    is_harmful's threshold.

    Mirrored by: views/memories.py (`delta__lt` filter of the memory page)
    and static/memscore/heatmap.js (`isBetterWithout`)."""
    return _scored(delta) and delta < -ZERO_THRESHOLD


def memory_importance(deltas):
    """One-memory mode's importance (the reference's): the sum of the
    divergences over the memory's window of responses."""
    return sum(max(0.0, d) for d in deltas)


def importance_sum(deltas):
    """A memory's importance over a run: the sum of its cells' importances
    (failed cells, None or NaN, left out; 0 when none was scored).

    Mirrored by: views/memories.py (`Sum` of `importance_sql`) and
    static/memscore/heatmap.js (`rowImportance`)."""
    return sum(cell_importance(d) for d in deltas if _scored(d))


def importance_max(deltas):
    """The largest cell importance of a memory, None when no cell was scored.

    Mirrored by: views/memories.py (`Max` of `importance_sql`) and
    static/memscore/heatmap.js (`rowImportance`, 0 there for sorting)."""
    return max((cell_importance(d) for d in deltas if _scored(d)), default=None)


def net_delta(deltas):
    """The sum of a memory's scored signed deltas: what is_harmful judges for
    a memory (0 when none was scored).

    Mirrored by: views/memories.py (`Sum("delta")`, NULL over failed cells)."""
    return sum(d for d in deltas if _scored(d))


def window_score(baselines, withouts):
    """Incremental mode's score of a memory: the largest divergence in its
    window of responses (0 for an empty window), as in the reference."""
    return max(divergences(baselines, withouts), default=0.0)


def ewma(previous, score, alpha):
    """A memory's new weight: an exponentially weighted moving average of its
    scores; the first score (previous None) becomes the weight.

    For 0 <= alpha <= 1 the weight stays between the previous weight and the
    score: the clamp undoes float rounding, which can otherwise step one ulp
    outside (0.1 * 3.0 + 0.9 * 3.0 == 3.0000000000000004)."""
    if previous is None:
        return score
    weight = alpha * score + (1 - alpha) * previous
    return min(max(weight, min(previous, score)), max(previous, score))


def is_harmful(net_delta):
    """Whether cells whose signed deltas sum to `net_delta` are harmful: the
    responses are more likely without the memory by more than HARMFUL_NATS.
    For one cell, its delta; for a memory, the sum over its scored cells.

    Mirrored by: static/memscore/heatmap.js (`isHarmful`); views/memories.py
    calls it through memory_flags on its SQL sums."""
    return _scored(net_delta) and net_delta < -HARMFUL_NATS


def importance_unknown(failed, measured):
    """Whether a memory's importance in a run is unknown: `failed` of its cells
    failed and none of them was measured. Its other cells are then
    "unaffected" (before the memory: exactly 0 whatever its call did), which
    say nothing of the rest: it is neither 0 nor "never matters".

    Used by: views/memories.py, heatmap/compare.py, modes/estimate.py."""
    return bool(failed) and not measured


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


def _scored(delta):
    """Whether a cell has a value: failed cells are None (rows) or NaN (arrays)."""
    return delta is not None and not math.isnan(delta)


# --- reviewers' agreement ---------------------------------------------------------


def cohens_kappa(pairs):
    """Cohen's kappa of two raters over the same items: `pairs` holds one
    (first rater's label, second rater's label) per item.

        kappa = (p_o - p_e) / (1 - p_e)

    p_o is the share of items they label alike; p_e the share they would by
    chance, sum over labels of (first's share of it) * (second's share of it).
    None where it does not apply: no items, or p_e = 1 (both gave one and the
    same label to everything, so chance explains all of it).
    """
    pairs = list(pairs)
    n = len(pairs)
    if not n:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    labels = {label for pair in pairs for label in pair}
    expected = sum(
        (sum(1 for a, _ in pairs if a == label) / n) * (sum(1 for _, b in pairs if b == label) / n)
        for label in labels
    )
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1 - expected)


# --- groups and redundancy (the groups mode, issue 11) ------------------------------

# A group (or a pair) is scored member by member (stage 2) when leaving it out
# moves its responses by at least this many nats, either way (removal_effect).
# The same size as HARMFUL_NATS: below it a set's effect is noise or nearly so.
GROUP_THRESHOLD_NATS = 0.5
# Redundant: leaving a set out costs at least this many nats more than leaving
# each member out in turn (redundancy_excess). Twice the threshold: a set must
# matter, and clearly more together than apart, before its members are called
# replaceable by each other.
REDUNDANCY_MARGIN_NATS = 1.0
# Near-duplicate memory texts: the same words once normalised, or word sets
# overlapping by at least this share (Jaccard) when both have at least
# NEAR_DUPLICATE_MIN_WORDS distinct words (shorter texts must match exactly).
NEAR_DUPLICATE_JACCARD = 0.8
NEAR_DUPLICATE_MIN_WORDS = 4


def group_of(key, separator="/"):
    """A memory key's group: its part before the first `separator` ("people"
    for "people/alice"); a key without one is a group of its own."""
    if not separator:
        return key
    head, found, _ = key.partition(separator)
    return head if found else key


def removal_effect(deltas):
    """How much leaving a set of memories out moves its responses, either way:
    the sum of |delta| over the cells beyond ZERO_THRESHOLD (failed left out).
    What the groups mode compares with its threshold."""
    return sum(abs(d) for d in deltas if _scored(d) and abs(d) > ZERO_THRESHOLD)


def leave_out_cost(deltas):
    """What leaving a set (or one memory) out costs its responses: the sum of
    the cells' importances (maths.importance_sum: divergences above the noise)."""
    return importance_sum(deltas)


def redundancy_excess(together, alone):
    """How much more leaving a set out costs than leaving each of its members
    out in turn: together − Σ alone (nats; positive where the members stand
    in for each other)."""
    return together - sum(alone)


def is_redundant(together, alone, margin=REDUNDANCY_MARGIN_NATS):
    """Whether a set's members are redundant with each other: leaving them all
    out costs at least `margin` nats more than the sum of leaving each out."""
    return redundancy_excess(together, alone) >= margin


def replaceable_members(alone_by_key, margin=REDUNDANCY_MARGIN_NATS):
    """Of a redundant group, the members that each cost less than `margin`
    alone (each can go by itself): the ones flagged, when at least two are."""
    small = [key for key, cost in alone_by_key.items() if cost < margin]
    return small if len(small) >= 2 else []


def text_words(text):
    """A memory text's words, normalised: case folded, punctuation and
    spacing dropped (what near_duplicate compares)."""
    return re.findall(r"\w+", (text or "").casefold())


def near_duplicate(words_a, words_b):
    """Whether two memory texts (as text_words) say the same thing: the same
    words in the same order, or word sets overlapping by at least
    NEAR_DUPLICATE_JACCARD when both have NEAR_DUPLICATE_MIN_WORDS distinct words."""
    if not words_a or not words_b:
        return False
    if words_a == words_b:
        return True
    a, b = set(words_a), set(words_b)
    if min(len(a), len(b)) < NEAR_DUPLICATE_MIN_WORDS:
        return False
    return len(a & b) / len(a | b) >= NEAR_DUPLICATE_JACCARD
