"""What `score` says when a run ends: the memories that matter most, with
their importance, those whose importance is unknown, and where to see the run;
an agent's name stands for its latest snapshot, and `snapshots` lists them."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from scoring import maths
from scoring.models import CellScore, ScoringRun
from tests.conftest import NO_FAULTS
from tests.engine_support import make_snapshot, private_refserver  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent)


def command(name, *args):
    out = StringIO()
    call_command(name, *[str(a) for a in args], stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()


def importances(run):
    """{key: maths.importance_sum of its cells}: what the report must agree with."""
    deltas = {}
    for key, delta, failed in CellScore.objects.filter(run=run).values_list("memory__key", "delta", "failed"):
        deltas.setdefault(key, []).append(None if failed else delta)
    return {key: maths.importance_sum(d) for key, d in deltas.items()}


def test_a_full_run_reports_its_most_important_memories_and_its_page(snapshot):
    lines = command("score", snapshot.pk, "--mode", "full", "--inline")

    run = ScoringRun.objects.get()
    expected = sorted(importances(run).items(), key=lambda item: (-item[1], item[0]))[:5]
    assert lines[2] == "most important (importance: the sum of a memory's cells above 0.01 nats), 5 of 8:"
    ranked = [line.split() for line in lines[3:8]]
    assert [(rank, key) for rank, key, _ in ranked] == [(f"{i}.", key) for i, (key, _) in enumerate(expected, 1)]
    assert [float(value) for *_, value in ranked] == [pytest.approx(v, abs=5e-4) for _, v in expected]
    assert lines[-1] == f"page: {reverse('run_detail', args=[run.pk])} (heatmap {reverse('heatmap', args=[run.pk])})"
    assert not any(line.startswith("unknown") for line in lines)


def test_a_partial_run_names_the_memories_whose_importance_is_unknown(snapshot, agent, ref):
    agent.score_concurrency = 1
    agent.save()
    ref.control(**{**NO_FAULTS, "fail_nth": [3, 4]})
    out = StringIO()

    with pytest.raises(CommandError, match="finished with failures"):
        call_command("score", snapshot.pk, "--mode", "full", "--inline", stdout=out, stderr=StringIO())

    lines = out.getvalue().splitlines()
    assert "unknown: 1 memory whose call failed (not 0): identity/sam" in lines
    assert "identity/sam" not in " ".join(line for line in lines if line.startswith("  "))
    assert lines[-1].startswith("page: /runs/")


def test_an_agents_name_scores_its_latest_snapshot(agent, snapshot):
    older = make_snapshot(agent)
    older.taken_at = snapshot.taken_at - timedelta(days=1)
    older.save()

    lines = command("score", agent.name, "--mode", "full")

    assert ScoringRun.objects.get(pk=int(lines[0])).snapshot == snapshot
    with pytest.raises(CommandError, match="no agent with id or name 'nobody' .agents: poc"):
        command("score", "nobody", "--mode", "full")
    with pytest.raises(CommandError, match="`manage.py snapshots AGENT` lists an agent's"):
        command("score", 999999, "--mode", "full")


def test_snapshots_lists_an_agents_snapshots_latest_first(agent, snapshot):
    older = make_snapshot(agent)
    older.taken_at = snapshot.taken_at - timedelta(days=1)
    older.save()
    command("score", snapshot.pk, "--mode", "full")

    lines = command("snapshots", agent.name)

    assert [line.split("\t")[0] for line in lines] == [str(snapshot.pk), str(older.pk)]
    assert lines[0].endswith("\t1 run") and lines[1].endswith("\t0 runs")
    assert command("snapshots", agent.name, "--limit", "1") == lines[:1]
