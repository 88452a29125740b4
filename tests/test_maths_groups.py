"""scoring.maths for the groups mode: groups, removal effects, leave-out
costs, redundancy and near-duplicate texts."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring import maths
from scoring.modes.groups import duplicate_pairs, group_keys

nats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
cells = st.one_of(nats, st.none(), st.just(math.nan))


def test_the_thresholds_are_the_documented_ones():
    assert maths.GROUP_THRESHOLD_NATS == 0.5
    assert maths.REDUNDANCY_MARGIN_NATS == 1.0
    assert maths.NEAR_DUPLICATE_JACCARD == 0.8 and maths.NEAR_DUPLICATE_MIN_WORDS == 4


@pytest.mark.parametrize(("key", "separator", "group"), [
    ("people/alice", "/", "people"), ("people/team/bob", "/", "people"), ("alice", "/", "alice"),
    ("/root", "/", ""), ("a.b/c", ".", "a"), ("people/alice", "", "people/alice"),
])
def test_a_key_is_grouped_by_its_part_before_the_first_separator(key, separator, group):
    assert maths.group_of(key, separator) == group


def test_groups_keep_context_order():
    keys = ["b/1", "a/1", "b/2", "c", "a/2"]
    assert group_keys(keys, "/") == {"b": ["b/1", "b/2"], "a": ["a/1", "a/2"], "c": ["c"]}


def test_the_removal_effect_counts_both_ways_above_the_noise():
    assert maths.removal_effect([2.0, -1.5, 0.005, -0.01, None, math.nan]) == 3.5
    assert maths.removal_effect([]) == 0


@given(st.lists(cells))
def test_the_removal_effect_is_at_least_the_cost_and_never_negative(deltas):
    assert maths.removal_effect(deltas) >= maths.leave_out_cost(deltas) - 1e-6 * (1 + len(deltas))
    assert maths.leave_out_cost(deltas) >= 0


def test_the_cost_is_the_importance_sum():
    assert maths.leave_out_cost([3.0, -2.0, 0.009, None]) == maths.importance_sum([3.0, -2.0, 0.009, None]) == 3.0


def test_redundancy_needs_the_margin_in_excess_of_the_members_alone():
    assert maths.redundancy_excess(10.0, [2.0, 3.0]) == 5.0
    assert maths.is_redundant(10.0, [4.0, 5.0]) and not maths.is_redundant(9.9, [4.0, 5.0])
    # Unrelated memories: together about what each costs alone.
    assert not maths.is_redundant(9.2, [4.0, 5.0])
    assert maths.is_redundant(9.2, [4.0, 5.0], margin=0.1)


def test_a_group_flags_only_members_that_each_cost_little_alone_and_at_least_two():
    assert maths.replaceable_members({"a": 0.2, "b": 0.9, "c": 30.0}) == ["a", "b"]
    assert maths.replaceable_members({"a": 0.2, "c": 30.0}) == []
    assert maths.replaceable_members({"a": 1.5, "b": 1.5}, margin=2.0) == ["a", "b"]


@pytest.mark.parametrize(("a", "b", "same"), [
    ("Desk 14 at Platform, door code 4471#.", "desk 14 at platform door code 4471", True),
    ("Bob prefers tea.", "bob   PREFERS tea", True),
    ("Bob prefers tea.", "Bob prefers coffee.", False),
    ("Sam runs at 6am by the canal every weekday.", "Sam runs at 6am by the canal every single weekday.", True),
    ("Sam runs at 6am by the canal every weekday.", "Alice runs the Thursday 10:30 sync in room Kepler.", False),
    ("", "", False),
])
def test_near_duplicates_are_the_same_words_or_a_large_overlap(a, b, same):
    assert maths.near_duplicate(maths.text_words(a), maths.text_words(b)) is same


def test_duplicate_pairs_are_found_wherever_they_are_in_context_order():
    texts = {
        "people/alice": "Alice runs the Thursday sync in room Kepler.",
        "places/office": "Desk 14 at Platform, door code 4471#.",
        "people/bob": "Bob prefers tea, never coffee.",
        "notes/desk": "desk 14 at platform; door code 4471",
        "notes/alice": "Alice runs the Thursday sync in room Kepler!",
        "notes/other": "Door code of the bike shed is 1234.",
    }
    words = {k: maths.text_words(t) for k, t in texts.items()}
    assert duplicate_pairs(words, list(texts)) == [("people/alice", "notes/alice"), ("places/office", "notes/desk")]


@given(st.lists(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=8), max_size=12))
def test_duplicate_pairs_find_every_pair_a_plain_comparison_finds(texts):
    keys = [f"k{i}" for i in range(len(texts))]
    words = dict(zip(keys, texts))
    plain = [(keys[i], keys[j]) for j in range(len(keys)) for i in range(j)
             if maths.near_duplicate(texts[i], texts[j])]
    assert sorted(duplicate_pairs(words, keys)) == sorted(plain)
