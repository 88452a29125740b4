"""The score command: start a run, follow it, run it in-process, and fail loudly."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from scoring.models import Activity, CellScore, Memory, ScoringRun
from tests.conftest import NO_FAULTS, wait_for
from tests.engine_support import make_snapshot, private_refserver  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent)


def score(*args, err=None):
    """stdout's lines: the run id, then the findings; progress goes to err (stderr)."""
    out = StringIO()
    call_command("score", *[str(a) for a in args], stdout=out, stderr=err or StringIO())
    return out.getvalue().splitlines()


def test_it_starts_a_run_and_prints_its_id(snapshot):
    lines = score(snapshot.pk, "--mode", "full")

    run = ScoringRun.objects.get()
    assert lines == [str(run.pk)]
    assert run.status == ScoringRun.Status.QUEUED and run.calls_total == 9
    assert Activity.objects.get(verb="started run").actor_name == "command line"


def test_one_memory_is_one_memory(snapshot):
    key = Memory.objects.filter(agent=snapshot.agent).order_by("key").first().key
    lines = score(snapshot.pk, "--mode", "full", "--keys", key, "--inline")
    assert lines[1].startswith("1 memory, ") and lines[1].endswith(" cells")


def test_it_runs_inline_and_reports_progress(snapshot):
    err = StringIO()
    lines = score(snapshot.pk, "--mode", "full", "--inline", err=err)

    run = ScoringRun.objects.get()
    # stdout: what scripts read; the progress is on stderr.
    assert lines[:2] == [str(run.pk), "8 memories, 56 cells"] and lines[-1].startswith(f"page: /runs/{run.pk}/")
    assert run.status == ScoringRun.Status.SUCCEEDED
    assert err.getvalue().splitlines()[-1].startswith(f"run {run.pk} succeeded: 9/9 calls (0 failed)")
    assert CellScore.objects.filter(run=run).count() == 56


def test_it_prints_the_importance_of_one_memory(snapshot):
    lines = score(snapshot.pk, "--mode", "memory", "--key", "people/alice", "--inline")

    run = ScoringRun.objects.get()
    assert lines[-2] == (f"importance of people/alice: {run.result['importance']:.3f} over "
                         f"{run.result['responses']} responses")
    assert run.result["importance"] > 1.0


def test_it_exits_non_zero_when_the_run_is_partial(snapshot, agent, ref):
    agent.score_concurrency = 1
    agent.save()
    ref.control(**{**NO_FAULTS, "fail_nth": [3, 4]})

    with pytest.raises(CommandError) as e:
        score(snapshot.pk, "--mode", "full", "--inline")

    run = ScoringRun.objects.get()
    assert run.status == ScoringRun.Status.PARTIAL
    assert str(e.value).startswith(f"run {run.pk} finished with failures: 1 of 9 calls failed")
    assert "identity/sam" in str(e.value)


def test_it_follows_a_run_on_a_worker(snapshot, celery_worker):
    err = StringIO()
    lines = score(snapshot.pk, "--mode", "memory", "--key", "places/office", "--wait", err=err)

    run = ScoringRun.objects.get()
    assert run.status == ScoringRun.Status.SUCCEEDED
    assert len(lines) == 3 and lines[0] == str(run.pk)
    assert lines[1].startswith("importance of places/office: ") and lines[2].startswith("page: ")
    progress = err.getvalue().splitlines()
    assert progress[-1].startswith(f"run {run.pk} succeeded: 2/2 calls")
    assert len(progress) == len(set(progress))


def test_it_explains_what_it_cannot_start(snapshot):
    cases = [
        ([999999, "--mode", "full"], "no snapshot with id 999999"),
        ([snapshot.pk, "--mode", "memory", "--key", "nope"], "--key: no memory with key 'nope'"),
        ([snapshot.pk, "--mode", "full", "--count", "3"], "--count does not apply to --mode full"),
        ([snapshot.pk, "--mode", "incremental", "--limit", "0"], "--limit: must be at least 1"),
        ([snapshot.pk, "--mode", "incremental", "--max-age", "-1"], "--max-age: must be at least 0"),
    ]
    for args, message in cases:
        with pytest.raises(CommandError) as e:
            score(*args)
        assert message in str(e.value)
    assert not ScoringRun.objects.exists()


def test_it_reports_a_failed_baseline(snapshot, ref):
    ref.control(**{**NO_FAULTS, "fail_rate": 1.0})

    with pytest.raises(CommandError) as e:
        score(snapshot.pk, "--mode", "finetune", "--count", "10", "--inline")

    assert "failed" in str(e.value) and "baseline" in str(e.value)
    wait_for(lambda: ScoringRun.objects.get().status == ScoringRun.Status.FAILED, timeout=5)


def test_it_names_the_modes_when_one_is_unknown(snapshot):
    with pytest.raises(CommandError) as e:
        score(snapshot.pk, "--mode", "bogus")
    assert "choose from 'full', 'memory', 'incremental', 'finetune'" in str(e.value)
