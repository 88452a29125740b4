"""cancel_run: what a run page's Cancel does, for scripts: a run a real worker
is doing stops, one line per run, ids checked before anything is cancelled."""

import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from scoring.engine import start_run
from scoring.models import Activity, ScoringRun
from scoring.models.runs import RunStatus
from tests.conftest import NO_FAULTS, run_on_worker, wait_for
from tests.engine_support import make_snapshot


def cancel(*ids):
    out = StringIO()
    call_command("cancel_run", *[str(pk) for pk in ids], stdout=out)
    return out.getvalue().splitlines()


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent)


@pytest.mark.django_db(transaction=True)
def test_it_stops_a_run_a_worker_is_doing(agent, ref, snapshot, fast_worker):
    from scoring.followups import Followups
    from scoring.tasks.enqueue import enqueue_on_commit

    agent.score_concurrency = 1
    agent.save()
    ref.control(**{**NO_FAULTS, "latency_ms": 400})
    run = start_run(snapshot, "full")
    enqueue_on_commit(Followups(runs=[run.pk]))  # as the run form sends it
    wait_for(lambda: ScoringRun.objects.get(pk=run.pk).calls_done >= 1, timeout=60, message="a call to finish")

    [line] = cancel(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.error == "cancelled by command line"
    assert line == f"run {run.pk} cancelled ({run.calls_done + run.calls_failed}/{run.calls_total} calls were done)"
    assert 1 <= run.calls_done < run.calls_total
    # The worker stops: nothing more is done (at most the call in flight, discarded).
    calls = ref.stats()["calls"]["score"]
    time.sleep(1.5)
    done = ScoringRun.objects.get(pk=run.pk)
    assert (done.status, done.calls_done) == (RunStatus.CANCELLED, run.calls_done)
    assert ref.stats()["calls"]["score"] <= calls + 1
    entry = Activity.objects.get(verb="cancelled run", target_id=str(run.pk))
    assert entry.actor is None and entry.actor_name == "command line"


@pytest.mark.django_db(transaction=True)
def test_a_run_that_ended_is_named_with_how_it_ended(agent, snapshot, fast_worker):
    done = run_on_worker(start_run(snapshot, "full"))
    queued = start_run(snapshot, "full")  # never sent: stays queued

    assert cancel(done.pk, queued.pk, queued.pk) == [
        f"run {done.pk} had already ended (succeeded)",
        f"run {queued.pk} cancelled (0/{queued.calls_total} calls were done)",
    ]
    assert cancel(queued.pk) == [f"run {queued.pk} had already ended (cancelled)"]
    assert Activity.objects.filter(verb="cancelled run").count() == 1
    done.refresh_from_db()
    assert done.status == RunStatus.SUCCEEDED


@pytest.mark.django_db
def test_an_id_that_is_no_run_cancels_nothing(snapshot):
    queued = start_run(snapshot, "full")
    with pytest.raises(CommandError, match=r"^no run with id 999999; nothing was cancelled$") as e:
        cancel(queued.pk, 999999)
    assert e.value.returncode == 1
    with pytest.raises(CommandError, match=r"^no runs with ids 999998, 999999; nothing was cancelled$"):
        cancel(999998, queued.pk, 999999)
    queued.refresh_from_db()
    assert queued.status == RunStatus.QUEUED
    assert not Activity.objects.filter(verb="cancelled run").exists()


def test_the_help_says_the_ids_are_checked_first():
    from scoring.management.commands.cancel_run import Command

    text = " ".join(Command().create_parser("manage.py", "cancel_run").format_help().split())
    assert "All the ids are checked first" in text and "nothing is cancelled" in text and "RUN [RUN ...]" in text
