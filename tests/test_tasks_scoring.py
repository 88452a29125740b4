"""The scoring tasks through a real Celery worker process and a real reference server.

The worker reads MEMSCORE_* from its environment, so the fixture sets short
retries and claims there (and in this process, where resume_stalled_runs runs
as beat would run it).
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from memscore_site.celery import app
from scoring.engine import run_inline, start_run
from scoring.followups import Followups
from scoring.models import Candidate, CellScore, Memory, ScoreCall, ScoringRun
from scoring.tasks.enqueue import enqueue_on_commit
from scoring.tasks.runs import (
    execute_run,
    generate_alternate,
    resend_lost_alternates,
    resume_stalled_runs,
    score_due_memories,
)
from tests.conftest import NO_FAULTS, wait_for
from tests.engine_support import (
    cells_by_key,
    independent_deltas,
    make_snapshot,
    private_refserver,  # noqa: F401  (this module's own server)
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLAIM_SECONDS = 3


@pytest.fixture
def fast_env(monkeypatch, settings):
    for name, value in [("MEMSCORE_RETRY_BACKOFF", 0.05), ("MEMSCORE_CALL_ATTEMPTS", 2),
                        ("MEMSCORE_CLAIM_SECONDS", CLAIM_SECONDS)]:
        monkeypatch.setenv(name, str(value))
        setattr(settings, name, value)


@pytest.fixture
def worker(fast_env, celery_worker):
    return celery_worker


def send(run):
    """What the pages and the command do after start_run."""
    enqueue_on_commit(Followups(runs=[run.pk]))
    return run


def finished(run):
    def check():
        run.refresh_from_db()
        return not run.is_active
    return check


def test_it_runs_a_full_matrix_on_a_worker_within_the_concurrency(agent, ref, worker, tmp_path):
    from refserver.testing import run_refserver

    snapshot = make_snapshot(agent, extra_memories=4)
    expected = independent_deltas(ref.base_url, snapshot)
    # A fresh server counts only this run's calls; two shards share concurrency 3.
    with run_refserver(tmp_path / "fresh", "--latency-ms", "150") as fresh:
        agent.base_url, agent.score_concurrency, agent.score_shards = fresh.base_url, 3, 2
        agent.save()

        run = send(start_run(snapshot, "full"))
        wait_for(finished(run), timeout=90, message="the run to finish")
        stats = fresh.stats()

    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    _same(cells_by_key(run), expected)
    assert stats["calls"]["score"] == run.calls_total == 13
    assert 2 <= stats["max_concurrent_seen"] <= 3


def _same(got, expected):
    assert set(got) == set(expected)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-9)
    return True


def test_it_finishes_a_run_after_its_worker_is_killed(agent, ref, worker):
    snapshot = make_snapshot(agent)
    expected = independent_deltas(ref.base_url, snapshot)
    agent.score_concurrency = 2
    agent.save()
    ref.control(**{**NO_FAULTS, "latency_ms": 400})
    run = send(start_run(snapshot, "full"))
    calls = ScoreCall.objects.filter(run=run)
    wait_for(lambda: calls.filter(status=ScoreCall.Status.DONE).count() >= 2
             and calls.filter(status=ScoreCall.Status.RUNNING).exists(), timeout=60,
             message="the run to be in flight")

    worker.kill()

    in_flight = set(calls.filter(status=ScoreCall.Status.RUNNING).values_list("pk", flat=True))
    assert in_flight
    ref.control(**NO_FAULTS)
    worker.restart()

    def resumed():
        resume_stalled_runs()  # what beat does every 15 seconds
        return finished(run)()

    wait_for(resumed, timeout=60, interval=0.5, message="the run to be resumed and finish")
    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    assert run.calls_done == run.calls_total and run.calls_failed == 0
    # The calls the dead worker held were claimed again, once each.
    assert set(calls.filter(attempts=2).values_list("pk", flat=True)) == in_flight
    assert CellScore.objects.filter(run=run).count() == 8 * 7
    _same(cells_by_key(run), expected)


def test_it_stops_a_cancelled_run_and_discards_results_in_flight(agent, ref, worker, django_user_model):
    otto = django_user_model.objects.create_user("otto")
    snapshot = make_snapshot(agent)
    agent.score_concurrency = 1
    agent.save()
    ref.control(**{**NO_FAULTS, "latency_ms": 500})
    run = send(start_run(snapshot, "full", by=otto))
    wait_for(lambda: ScoringRun.objects.get(pk=run.pk).calls_done >= 1, timeout=60,
             message="a call to finish")

    assert run.cancel(by=otto)
    sent = ref.stats()["calls"]["score"]
    time.sleep(2)

    run.refresh_from_db()
    assert run.status == ScoringRun.Status.CANCELLED and run.cancelled_by == otto
    done = run.calls_done
    assert ref.stats()["calls"]["score"] <= sent + 1  # at most the call that was in flight
    time.sleep(1)
    run.refresh_from_db()
    assert run.calls_done == done
    assert not ScoreCall.objects.filter(run=run, status=ScoreCall.Status.DONE).count() > done


def test_it_starts_incremental_runs_for_due_memories(agent, ref, worker):
    make_snapshot(agent, taken_at="2026-11-19T12:00:00Z")
    latest = make_snapshot(agent)

    score_due_memories()

    run = ScoringRun.objects.get()
    assert (run.mode, run.snapshot) == ("incremental", latest)
    assert run.params["limit"] == agent.incremental_batch
    score_due_memories()  # one active incremental run per agent at a time
    assert ScoringRun.objects.count() == 1
    wait_for(finished(run), timeout=60, message="the incremental run to finish")
    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    scored = Memory.objects.filter(agent=agent, weight__isnull=False, last_scored__isnull=False)
    assert scored.count() == len(run.result["scored"]) >= 1

    # What is left due is too recent to score: no run until the conversation grows.
    score_due_memories()
    assert ScoringRun.objects.count() == 1


def test_it_retries_a_failed_alternate_until_it_is_generated(agent, ref, worker):
    snapshot = make_snapshot(agent)
    # Each task makes two attempts: the first task of all fails on both.
    ref.control(**{**NO_FAULTS, "fail_endpoints": ["completions"], "fail_nth": [1, 2]})

    run = send(start_run(snapshot, "finetune", params={"count": 100, "min_divergence": 1.0, "alternates": True}))

    wait_for(finished(run), timeout=60, message="the fine-tune run to finish")
    candidates = Candidate.objects.filter(run=run)
    assert candidates.exists()
    wait_for(lambda: all(c.alternate_status == Candidate.AlternateStatus.DONE for c in candidates.all()),
             timeout=60, message="every alternate")
    assert all(c.alternate_text for c in candidates.all())
    assert ref.stats()["calls"]["completions"] == candidates.count() + 2


def test_it_records_an_alternate_that_keeps_failing(agent, ref, worker):
    snapshot = make_snapshot(agent)
    ref.control(**{**NO_FAULTS, "fail_endpoints": ["completions"], "fail_rate": 1.0})

    run = send(start_run(snapshot, "finetune", params={"count": 100, "min_divergence": 1.0, "alternates": True}))

    wait_for(finished(run), timeout=60, message="the fine-tune run to finish")
    candidates = Candidate.objects.filter(run=run)
    # The task retries three times after its first try, two attempts each.
    wait_for(lambda: ref.stats()["calls"].get("completions", 0) >= 8 * candidates.count(), timeout=60,
             message="every retry")
    time.sleep(0.5)
    for c in candidates.all():
        assert c.alternate_status == Candidate.AlternateStatus.FAILED
        assert "/completions HTTP 500: injected failure" in c.alternate_error


def test_it_waits_a_claims_length_before_resuming_a_run(agent, ref, fast_env):
    snapshot = make_snapshot(agent)
    run = start_run(snapshot, "full")

    resume_stalled_runs()

    run.refresh_from_db()
    assert run.enqueued_at is None  # too fresh: a worker may be about to take it
    ScoringRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=60))

    resume_stalled_runs()

    run.refresh_from_db()
    assert run.enqueued_at is not None


def test_it_returns_quietly_for_work_that_is_gone_or_done(agent, ref):
    snapshot = make_snapshot(agent)
    run = start_run(snapshot, "full")
    run.cancel()

    execute_run(run.pk)  # a cancelled run: nothing is claimed
    execute_run(999_999)
    generate_alternate(999_999)

    assert not ScoreCall.objects.filter(run=run).exclude(status=ScoreCall.Status.PENDING).exists()
    assert ref.stats()["calls"].get("score", 0) == 0


@pytest.mark.django_db
def test_it_sends_again_an_alternate_whose_task_was_lost(agent, settings):
    """A pending alternate older than a claim is sent again, once per tick."""
    snapshot = make_snapshot(agent)
    run = start_run(snapshot, "finetune", params={"min_divergence": 0.0, "alternates": True})
    run_inline(run)
    candidate = Candidate.objects.filter(run=run).first()
    assert candidate is not None
    # As a worker killed mid-task leaves it: pending, sent long ago, no text.
    stale = timezone.now() - timedelta(seconds=settings.MEMSCORE_ALTERNATE_LOST_SECONDS + 5)
    Candidate.objects.filter(pk=candidate.pk).update(
        alternate_status="pending", alternate_text="", alternate_requested_at=stale
    )

    app.conf.task_always_eager = True
    try:
        resend_lost_alternates()
    finally:
        app.conf.task_always_eager = False

    candidate.refresh_from_db()
    assert candidate.alternate_status == "done" and candidate.alternate_text
    assert candidate.alternate_requested_at > stale
