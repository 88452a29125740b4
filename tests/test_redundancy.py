"""Redundancy (issue 11): memories that stand in for each other, found by the
groups mode on the reference server. Duplicated and near-duplicated texts
under other keys are flagged with the nats that back the flag; memories that
say different things are not, even in one group."""

import pytest

from scoring import maths
from scoring.engine import run_inline, start_run
from scoring.models import ScoreCall, ScoringRun
from tests.engine_support import (
    FACTS,
    make_snapshot,
    private_refserver,  # noqa: F401  (this module's own server)
)

pytestmark = pytest.mark.django_db(transaction=True)

OFFICE, ALICE = FACTS[1][1], FACTS[0][1]


def groups_run(agent, facts, **params):
    snapshot = make_snapshot(agent, facts=facts, identity=False)
    run = run_inline(start_run(snapshot, "groups", params=params))
    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    return run


def flagged(run):
    return sorted(sorted(flag["keys"]) for flag in run.result["redundant"])


def test_a_near_duplicate_in_the_same_group_is_flagged_and_its_unrelated_neighbours_are_not(agent):
    # One more word than Alice's memory (Jaccard 8/9): a near-duplicate, not the same text.
    again = ("people/alice-again", ALICE.replace("sync", "weekly sync"), "Alice's sync: Thursday 10:30, Kepler.")
    run = groups_run(agent, [*FACTS, again])

    assert run.result["pairs"] == [["people/alice", "people/alice-again"]]
    assert flagged(run) == [["people/alice", "people/alice-again"]]
    flag = run.result["redundant"][0]
    assert flag["kind"] == "pair" and flag["together"] - flag["alone_sum"] >= maths.REDUNDANCY_MARGIN_NATS
    # people/bob and people/carol share the group but say other things: no flag names them.
    assert not any("people/bob" in f["keys"] or "people/carol" in f["keys"] for f in run.result["redundant"])


def test_a_group_of_two_duplicates_is_one_call_and_one_flag(agent):
    boiler = "The boiler reset code is 8812 and the spare key is under the blue mat."
    facts = [*FACTS, ("dup/one", boiler, "Boiler code 8812, key under the blue mat."),
             ("dup/two", boiler, "The spare key is under the blue mat; code 8812.")]
    run = groups_run(agent, facts)

    # The group "dup" is also the one duplicate pair: left out together once.
    assert run.result["pairs"] == [["dup/one", "dup/two"]]
    together = ScoreCall.objects.filter(run=run, filter=ScoreCall.Filter.SKIP_KEYS)
    assert [c.removed_keys for c in together if "dup/one" in c.removed_keys] == [["dup/one", "dup/two"]]
    # Each copy alone costs little (the other remains); together they cost more.
    assert flagged(run) == [["dup/one", "dup/two"]]
    dup = next(g for g in run.result["groups"] if g["group"] == "dup")
    assert dup["stage2"] and all(m["exact"] for m in dup["members"])
    assert dup["importance"] - sum(m["importance"] for m in dup["members"]) >= maths.REDUNDANCY_MARGIN_NATS


def test_three_copies_are_not_flagged_two_by_two_where_the_third_stands_in(agent):
    # What pairs cannot see: without two of three copies the third still says it.
    facts = [*FACTS, ("dup/one", OFFICE, "Desk 14, code 4471#."), ("dup/two", OFFICE, "Code 4471# at desk 14.")]
    run = groups_run(agent, facts)

    assert len(run.result["pairs"]) == 3
    assert ["dup/one", "dup/two"] not in flagged(run)


def test_no_flag_without_the_margin(agent):
    run = groups_run(agent, [*FACTS, ("notes/office", OFFICE, "Desk 14 at Platform.")], redundancy_margin=10_000)
    assert run.result["pairs"] == [["places/office", "notes/office"]]
    assert run.result["redundant"] == []
