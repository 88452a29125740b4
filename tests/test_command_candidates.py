"""The candidates command: a fine-tune run in this process, candidates printed."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from scoring.models import Candidate, ScoringRun
from tests.conftest import NO_FAULTS
from tests.engine_support import make_snapshot, private_refserver  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]


def candidates(*args):
    out, err = StringIO(), StringIO()
    call_command("candidates", *[str(a) for a in args], stdout=out, stderr=err)
    return out.getvalue().splitlines()


def test_it_prints_the_candidates_highest_first(agent, ref):
    snapshot = make_snapshot(agent)

    lines = candidates(snapshot.pk, "--count", "100", "--min-divergence", "1.0", "--alternates")

    run = ScoringRun.objects.get()
    assert run.status == ScoringRun.Status.SUCCEEDED and run.mode == "finetune"
    found = list(Candidate.objects.order_by("-divergence"))
    assert found and lines[0] == f"{len(found)} candidates ({len(found)} new)"
    for line, c in zip(lines[1:], found, strict=True):
        pk, divergence, start = line.split("\t")
        assert (int(pk), divergence) == (c.pk, f"{c.divergence:.3f}")
        assert c.response_text.startswith(start[:40])
        assert c.alternate_status == Candidate.AlternateStatus.DONE


def test_it_defaults_to_the_agents_settings(agent, ref):
    agent.finetune_count, agent.finetune_min_divergence = 6, 1e9
    agent.save()
    snapshot = make_snapshot(agent)

    lines = candidates(snapshot.pk)

    run = ScoringRun.objects.get()
    assert run.params == {"count": 6, "min_divergence": 1e9, "alternates": False}
    assert lines == ["0 candidates (0 new)"]


def test_it_exits_non_zero_when_scoring_fails(agent, ref):
    snapshot = make_snapshot(agent)
    ref.control(**{**NO_FAULTS, "fail_rate": 1.0})

    with pytest.raises(CommandError, match="failed"):
        candidates(snapshot.pk, "--count", "10")
    assert not Candidate.objects.exists()


def test_the_thread_that_runs_it_leaves_no_database_session_behind(agent, ref):
    # It runs in a thread of its own while this one prints progress: its connection
    # must close with it, or the caller's process keeps a session open for good.
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("counting sessions needs PostgreSQL's pg_stat_activity (CI runs it there)")

    def sessions():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    snapshot = make_snapshot(agent)
    before = sessions()
    candidates(snapshot.pk, "--count", "100", "--min-divergence", "1.0")
    assert sessions() == before
