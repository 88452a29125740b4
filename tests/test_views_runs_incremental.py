"""An incremental run on its page, its start form and the command line: each
memory with its window, score and weight before and after, or why it was
skipped or not scored, also after its failed calls were sent again."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from scoring import modes
from scoring.engine import run_inline, start_run
from scoring.models import MemoryScore, ScoringRun
from scoring.models.runs import BASELINE_FAILED
from tests.conftest import NO_FAULTS
from tests.engine_support import (
    FACTS_WITH_LATE,
    conversation_doc,
    make_snapshot,
    private_refserver,  # noqa: F401  (this module's own server)
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]

WINDOW = 3
PARAMS = {"response_window": WINDOW, "limit": 3, "max_age": 0}


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent, conversation_doc(agent.name, facts=FACTS_WITH_LATE, identity=False,
                                                 repeat_key=False))


def page(cast, run):
    return cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk])).text


def scored_rows(run):
    return [row for row in modes.get("incremental").detail_context(run)["memories"] if row["state"] == "scored"]


def test_the_page_lists_each_memory_with_its_window_score_and_weight(cast, agent, snapshot):
    # Every memory it can score, twice: the second run folds into the first one's weights.
    first = run_inline(start_run(snapshot, "incremental", params={**PARAMS, "limit": 20}))
    second = run_inline(start_run(snapshot, "incremental", params={**PARAMS, "limit": 20}))
    assert second.status == ScoringRun.Status.SUCCEEDED

    html = page(cast, second)

    assert 'id="incremental-memories"' in html
    rows = scored_rows(second)
    assert len(rows) == len(scored_rows(first)) > 2
    for row in rows:
        before = MemoryScore.objects.get(run=first, memory__key=row["key"]).weight
        after = MemoryScore.objects.get(run=second, memory__key=row["key"]).weight
        assert row["weight_before"] == before
        assert row["last_response"] - row["first_response"] + 1 == WINDOW
        assert row["key"] in html
        assert f"responses #{row['first_response']}–#{row['last_response']}" in html
        assert f"{row['score']:.3f}" in html and f"{before:.3f} → {after:.3f}" in html
    # The first run's memories had no weight: their first score becomes it.
    assert all(row["weight_before"] is None for row in scored_rows(first))
    assert "none</span> →" in page(cast, first)
    for skipped in second.result["skipped"]:
        assert skipped["key"] in html
    assert "skipped</span>" in html and "past 60% of the conversation" in html
    # The command line says the same.
    out = StringIO()
    modes.get("incremental").report(second, out.write)
    assert f"{rows[0]['weight_before']:.3f} -> {rows[0]['weight']:.3f}" in out.getvalue()


def test_a_memory_whose_calls_failed_says_why_and_is_scored_once_sent_again(cast, agent, ref, snapshot):
    agent.score_concurrency = 1
    agent.save()
    # One at a time, baselines first, two attempts each: the third memory's baseline is calls 3 and 4.
    ref.control(**{**NO_FAULTS, "fail_nth": [3, 4]})
    run = run_inline(start_run(snapshot, "incremental", params=PARAMS))
    assert run.status == ScoringRun.Status.PARTIAL

    html = page(cast, run)

    failed = run.result["failed"]
    assert len(failed) == 1 and failed[0]["reason"].startswith(f"{BASELINE_FAILED}: ")
    assert failed[0]["key"] in html and "failed</span>" in html and BASELINE_FAILED in html
    assert "(weight unchanged)" in html
    assert len(scored_rows(run)) == 2

    ref.control(**NO_FAULTS)
    run.retry_failed(actor_name="test", forget=modes.get("incremental").unshown_when_none)
    run = run_inline(run)
    html = page(cast, run)

    assert run.status == ScoringRun.Status.SUCCEEDED and run.result["failed"] == []
    assert {row["key"] for row in scored_rows(run)} == {row["key"] for row in run.result["scored"]}
    assert failed[0]["key"] in {row["key"] for row in scored_rows(run)}
    assert "failed</span>" not in html
    for row in scored_rows(run):
        assert f"{row['score']:.3f}" in html


def test_the_start_form_says_what_it_does_and_costs(cast, agent, snapshot):
    agent.incremental_batch = 7
    agent.save()
    html = cast.client_for(cast.operator).get(reverse("snapshot_detail", args=[snapshot.pk])).text
    note = modes.get("incremental").page_note(snapshot)

    assert "2 calls per memory" in note and "14 calls" in note
    assert "past 60% of the conversation" in note and "moving average" in note
    assert "leaving out the conversation before it" in note
    assert 'mode-note">Scores each due memory (never scored, or not within the max age)' in html


def test_the_command_line_lists_the_failed_memories(agent, ref, snapshot):
    agent.score_concurrency = 1
    agent.save()
    ref.control(**{**NO_FAULTS, "fail_nth": [3, 4]})
    out = StringIO()
    with pytest.raises(CommandError, match="finished with failures"):
        call_command("score", snapshot.pk, "--mode", "incremental", "--response-window", str(WINDOW),
                     "--limit", "3", "--max-age", "0", "--inline", stdout=out, stderr=StringIO())
    assert f"not scored ({BASELINE_FAILED}: " in out.getvalue()
