"""The groups mode (issue 11): a call per group of keys, then exact
leave-one-out inside the groups that matter; run in this process, on a
Celery worker and from the command line, against the reference server."""

from io import StringIO

import pytest
from django.core.management import call_command

from scoring import modes
from scoring.context import Outline
from scoring.engine import run_inline, start_run
from scoring.followups import Followups
from scoring.heatmap.matrix import load_matrix
from scoring.models import CellScore, ScoreCall, ScoringRun
from scoring.tasks.enqueue import enqueue_on_commit
from tests.conftest import NO_FAULTS, wait_for
from tests.engine_support import (
    FACTS,
    cells_by_key,
    make_snapshot,
    private_refserver,  # noqa: F401  (this module's own server)
)

pytestmark = pytest.mark.django_db(transaction=True)

# places/office's text again, under a key of another group: a duplicate.
DUPLICATED = [*FACTS, ("notes/office", FACTS[1][1], "Desk 14 at Platform, the code is 4471#.")]
GROUPS = {
    "identity": ["identity/core", "identity/sam"], "people": ["people/alice", "people/bob", "people/carol"],
    "places": ["places/office"], "projects": ["projects/atlas"], "habits": ["habits/sam"],
    "notes": ["notes/office"],
}
# Keys without "/" (groups of one), then a group of two that appears last:
# its call is the last of stage 1 and the only one that adds calls.
LATER = [
    *((key.split("/")[1], memory, answer) for key, memory, answer in FACTS),
    ("later/gym", "The gym on Vale Street opens at 7am on Sundays.", "The Vale Street gym opens at 7am on Sundays."),
    ("later/dentist", "Dentist appointment with Dr Okafor on the 14th at 9:15.", "Dr Okafor at 9:15 on the 14th."),
]
# Above the identity group's effect (about 40 nats here), below the people group's (about 230).
THRESHOLD = 100.0


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent, facts=DUPLICATED)


def groups_run(snapshot, threads=None, **params):
    return run_inline(start_run(snapshot, "groups", params=params), threads=threads)


def skip_key_calls(run):
    return sorted(ScoreCall.objects.filter(run=run, filter=ScoreCall.Filter.SKIP_KEY)
                  .values_list("memory__key", flat=True))


def test_it_scores_every_group_then_the_members_of_groups_above_the_threshold(agent, snapshot):
    run = groups_run(snapshot, threshold=THRESHOLD)

    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    result = run.result
    groups = {g["group"]: g for g in result["groups"]}
    assert {name: g["keys"] for name, g in groups.items()} == GROUPS
    importances = [g["importance"] for g in result["groups"]]
    assert importances == sorted(importances, reverse=True) and importances[0] > 0
    # Only "people" matters above the threshold among the groups of several memories.
    assert groups["people"]["effect"] >= THRESHOLD > groups["identity"]["effect"] > 0
    assert groups["people"]["stage2"] and not groups["identity"]["stage2"]
    # 1 baseline + 6 groups + 1 duplicate pair, then the 3 members of "people".
    assert run.calls_total == result["calls_used"] == 11 and result["exact_calls"] == 10
    singles = ["habits/sam", "notes/office", "places/office", "projects/atlas"]
    assert skip_key_calls(run) == sorted(singles + GROUPS["people"])
    assert result["group_only"] == GROUPS["identity"]
    assert all(m["importance"] is None and not m["exact"] for m in groups["identity"]["members"])
    assert all(m["importance"] > 0 and m["exact"] for m in groups["people"]["members"])
    # Group-only memories have no cells at all: never zeros.
    assert not CellScore.objects.filter(run=run, memory__key__in=GROUPS["identity"]).exists()


def test_a_member_whose_own_call_failed_is_not_counted_as_scored_exactly(agent, snapshot):
    run = groups_run(snapshot, threshold=THRESHOLD)
    assert run.result["failed_memories"] == []
    # As if people/alice's own call had failed on every attempt.
    ScoreCall.objects.filter(run=run, filter="skip_key", memory__key="people/alice").update(
        status=ScoreCall.Status.FAILED, result=None)

    result = modes.get("groups").summary(run)

    assert result["failed_memories"] == ["people/alice"]
    assert "people/alice" not in result["exact_memories"]
    assert len(result["exact_memories"]) == len(run.result["exact_memories"]) - 1


def test_its_heatmap_rows_follow_the_context_not_the_order_of_the_calls(agent, snapshot):
    run = groups_run(snapshot, threshold=THRESHOLD)

    rows = [m["key"] for m in load_matrix(run, cells=False)["memories"]]
    in_context = [key for key in Outline(snapshot).keys() if key in rows]
    assert rows == in_context and len(rows) == 7
    assert rows != skip_key_calls_in_order(run)  # the members of "people" were called last


def skip_key_calls_in_order(run):
    return list(ScoreCall.objects.filter(run=run, filter=ScoreCall.Filter.SKIP_KEY).order_by("seq")
                .values_list("memory__key", flat=True))


def test_members_cells_are_the_full_matrix_cells(agent, snapshot):
    run = groups_run(snapshot)
    full = run_inline(start_run(snapshot, "full"))

    assert run.status == full.status == ScoringRun.Status.SUCCEEDED
    # The default threshold sends every group of several memories to stage 2 here.
    assert sorted(run.result["exact_memories"]) == sorted(k for keys in GROUPS.values() for k in keys)
    assert cells_by_key(run) == cells_by_key(full)
    states = set(CellScore.objects.filter(run=run).values_list("memory__key", "response_id", "state"))
    assert states == set(CellScore.objects.filter(run=full).values_list("memory__key", "response_id", "state"))
    assert run.calls_total == 13 > full.calls_total == 10


def test_duplicates_under_two_keys_are_redundant_and_unrelated_memories_are_not(agent, snapshot):
    run = groups_run(snapshot)

    flags = run.result["redundant"]
    assert [sorted(f["keys"]) for f in flags] == [["notes/office", "places/office"]]
    flag = flags[0]
    assert flag["kind"] == "pair" and flag["excess"] == pytest.approx(flag["together"] - flag["alone_sum"])
    assert flag["excess"] >= run.params["redundancy_margin"] == 1.0
    # The people group's unrelated memories cost about what they cost one by one.
    people = next(g for g in run.result["groups"] if g["group"] == "people")
    alone = sum(m["importance"] for m in people["members"])
    assert people["importance"] - alone < run.params["redundancy_margin"]


def test_a_failed_group_call_leaves_its_memories_unscored_never_zero(agent, snapshot, ref, settings):
    settings.MEMSCORE_RETRY_BACKOFF, settings.MEMSCORE_CALL_ATTEMPTS = 0.01, 3
    agent.score_concurrency = 1
    agent.save()
    # One at a time: the baseline, then the identity group's call fails on all three attempts.
    ref.control(**{**NO_FAULTS, "fail_nth": [2, 3, 4]})

    run = groups_run(snapshot)

    assert run.status == ScoringRun.Status.PARTIAL and run.calls_failed == 1
    identity = next(g for g in run.result["groups"] if g["group"] == "identity")
    assert identity["importance"] is None and identity["net"] is None and not identity["stage2"]
    assert run.result["groups"][-1]["group"] == "identity"  # unknown, ranked last
    assert run.result["group_only"] == GROUPS["identity"]
    assert not CellScore.objects.filter(run=run, memory__key__in=GROUPS["identity"]).exists()
    assert not CellScore.objects.filter(run=run, failed=True).exists()
    # The others went on: "people" (one executor left before its members were added) is exact.
    assert set(GROUPS["people"]) <= set(run.result["exact_memories"])


def test_the_command_line_takes_the_threshold_and_reports_groups_and_flags(agent, snapshot):
    out = StringIO()
    call_command("score", snapshot.pk, "--mode", "groups", "--threshold", str(THRESHOLD), "--inline", stdout=out)

    run = ScoringRun.objects.get(mode="groups")
    assert run.params == {"separator": "/", "threshold": THRESHOLD, "redundancy_margin": 1.0, "max_pairs": 100}
    text = out.getvalue()
    assert "6 groups, 1 scored member by member; 11 calls (the exact matrix takes 10)" in text
    assert "WARNING: these groups took 11 calls, more than the exact full matrix's 10" in text
    assert "redundant with each other: places/office, notes/office" in text


def test_the_report_counts_one_group_in_the_singular_and_warns_only_when_dearer():
    from scoring.modes import groups

    lines = []
    run = ScoringRun(result={"groups": [{"group": "people", "keys": ["people/a", "people/b"], "importance": 1.0,
                                         "stage2": False}],
                             "stage2_groups": 0, "calls_used": 2, "exact_calls": 3, "redundant": []})
    groups.MODE.report(run, lines.append)
    assert lines[0] == "1 group, 0 scored member by member; 2 calls (the exact matrix takes 3)"
    assert not any("WARNING" in line for line in lines)


def test_another_separator_groups_differently(agent, snapshot):
    run = start_run(snapshot, "groups", params={"separator": "_", "max_pairs": 0})

    assert run.result["pairs"] == [] and run.result["pairs_found"] == 1
    # No key has "_": every memory is a group of its own, its call its leave-one-out.
    assert run.calls_total == 1 + 9 == ScoreCall.objects.filter(run=run).count()
    assert len(skip_key_calls(run)) == 9


def test_calls_added_after_the_last_group_call_are_made_in_this_process_too(agent):
    # One call at a time: the executor has nothing in flight and nothing to
    # claim when the last group's result adds its members' calls.
    agent.score_concurrency = 1
    agent.save()
    snapshot = make_snapshot(agent, facts=LATER, identity=False)

    run = groups_run(snapshot)

    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    assert [g["keys"] for g in run.result["groups"] if g["stage2"]] == [["later/gym", "later/dentist"]]
    assert run.calls_done == run.calls_total == 1 + 7 + 2


@pytest.mark.slow
def test_a_worker_claims_the_calls_added_as_groups_finish(agent, fast_worker):
    agent.score_concurrency = 1
    agent.save()
    snapshot = make_snapshot(agent, facts=LATER, identity=False)
    expected = cells_by_key(groups_run(snapshot, threads=0))

    run = start_run(snapshot, "groups")
    enqueue_on_commit(Followups(runs=[run.pk]))

    def finished():
        run.refresh_from_db()
        return not run.is_active

    wait_for(finished, timeout=90, message="the groups run to finish")
    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    assert run.calls_total == run.calls_done == 1 + 7 + 2
    assert cells_by_key(run) == expected
