"""A worker told to stop (SIGTERM, Ctrl-C) stops claiming its run's calls:
it finishes and stores the calls in flight, leaves the rest pending, sends
the run again and exits within a call's length, instead of scoring the whole
run first (Celery's warm shutdown waits for running tasks)."""

import os
import signal
import subprocess
import threading

import pytest

from scoring.engine import run_inline, shutdown, start_run
from scoring.engine.executor import Executor
from scoring.followups import Followups
from scoring.models import ScoreCall, ScoringRun
from scoring.tasks.enqueue import enqueue_on_commit
from scoring.tasks.runs import execute_run
from tests.conftest import NO_FAULTS, wait_for
from tests.engine_support import (
    cells_by_key,
    independent_deltas,
    make_snapshot,
    private_refserver,  # noqa: F401  (this module's own server)
)

pytestmark = pytest.mark.django_db(transaction=True)

Status = ScoreCall.Status


@pytest.fixture
def no_shutdown(monkeypatch):
    """The flag is process-wide: whatever a test requests is undone after it."""
    monkeypatch.setattr(shutdown._requested, "value", 0)


def same(got, expected):
    assert set(got) == set(expected)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-9)
    return True


def assert_stopped_between_calls(run):
    """Nothing failed or lost: the calls are done or pending, none is left
    claimed (its claim would lapse a minute later), none was claimed twice."""
    run.refresh_from_db()
    calls = ScoreCall.objects.filter(run=run)
    assert run.is_active and run.calls_failed == 0
    assert not calls.filter(status__in=[Status.RUNNING, Status.FAILED]).exists()
    done, pending = calls.filter(status=Status.DONE).count(), calls.filter(status=Status.PENDING).count()
    assert done >= 2 and pending >= 2 and done + pending == run.calls_total
    assert set(calls.filter(status=Status.DONE).values_list("attempts", flat=True)) == {1}
    assert set(calls.filter(status=Status.PENDING).values_list("attempts", flat=True)) == {0}
    return done


def test_it_stops_claiming_once_the_worker_shuts_down(agent, ref, no_shutdown):
    snapshot = make_snapshot(agent, extra_memories=8)
    expected = independent_deltas(ref.base_url, snapshot)
    ref.control(**{**NO_FAULTS, "latency_ms": 300})
    run = start_run(snapshot, "full")
    executor = Executor(run, threads=2)
    # What the worker's signal handler does, a second into the run.
    threading.Timer(1.0, shutdown.request).start()

    executor.execute()

    assert executor.work_left
    assert_stopped_between_calls(run)
    # The task sent again to a worker that is not shutting down finishes it.
    shutdown._requested.value = 0
    ref.control(**NO_FAULTS)
    run = run_inline(run, threads=2)
    assert run.status == ScoringRun.Status.SUCCEEDED
    same(cells_by_key(run), expected)


def test_a_task_taken_while_the_worker_shuts_down_is_sent_again_untouched(agent, ref, no_shutdown, monkeypatch):
    run = start_run(make_snapshot(agent), "full")
    sent = []
    monkeypatch.setattr(execute_run, "delay", lambda *args: sent.append(args))
    shutdown.request()

    execute_run(run.pk, 0, 1)

    assert sent == [(run.pk, 0, 1)]
    run.refresh_from_db()
    assert run.started_at is None
    assert not ScoreCall.objects.filter(run=run).exclude(status=Status.PENDING).exists()


@pytest.mark.slow
def test_a_worker_asked_to_stop_mid_run_exits_and_a_fresh_one_finishes_the_run(agent, ref, celery_worker):
    # 37 calls of 1.5 s, two at a time: about 28 s if nothing stops the worker.
    snapshot = make_snapshot(agent, extra_memories=28)
    expected = independent_deltas(ref.base_url, snapshot)
    agent.score_concurrency = 2
    agent.save()
    ref.control(**{**NO_FAULTS, "latency_ms": 1500})
    run = start_run(snapshot, "full")
    enqueue_on_commit(Followups(runs=[run.pk]))
    calls = ScoreCall.objects.filter(run=run)
    wait_for(lambda: calls.filter(status=Status.DONE).count() >= 2
             and calls.filter(status=Status.RUNNING).exists(), timeout=60, message="the run to be in flight")

    # As `kill <pid>` or systemd's stop does: the main process only (its pool's
    # children are told by it).
    os.kill(celery_worker.proc.pid, signal.SIGTERM)
    # The calls in flight (1.5 s at most) and the worker's own shutdown: an
    # idle worker takes 2 s to exit with Redis, 6 s with the embedded broker
    # (it polls for 2 s at a time).
    try:
        celery_worker.proc.wait(timeout=12)
    except subprocess.TimeoutExpired:
        done = calls.filter(status=Status.DONE).count()
        pytest.fail(f"the worker still runs 12 s after SIGTERM ({done} of {run.calls_total} calls done)")

    assert celery_worker.proc.returncode == 0
    done = assert_stopped_between_calls(run)
    assert done <= run.calls_total - 20  # well before the run would have finished (15 s more)

    # Started afresh, a worker finds the run's task in the queue: no beat
    # (resume_stalled_runs) here to send it again.
    ref.control(**NO_FAULTS)
    celery_worker.restart()
    wait_for(lambda: not ScoringRun.objects.get(pk=run.pk).is_active, timeout=60,
             message="a fresh worker to finish the run")
    run.refresh_from_db()
    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    assert run.calls_done == run.calls_total and run.calls_failed == 0
    assert set(calls.values_list("attempts", flat=True)) == {1}
    same(cells_by_key(run), expected)
