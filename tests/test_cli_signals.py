"""SIGTERM (kill, systemd, docker stop, a CI timeout) and SIGHUP (a closed
terminal) stop a command as Ctrl-C does: a run done here is cancelled with the
signal named, a --wait stops following, one line and no traceback, exit 128 +
the signal's number. The handlers are the command's only while it runs, in the
main thread, and a signal the command was started ignoring (nohup) stays so."""

import signal
import time
from io import StringIO

import pytest
from candidate_factory import make_approved
from django.core.management import call_command

from scoring.models import Activity, ScoringRun, TrainJob
from scoring.models.runs import RunStatus
from tests.cli_support import CommandThread, signalled
from tests.conftest import NO_FAULTS, wait_for
from tests.engine_support import make_snapshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]

REASONS = {signal.SIGTERM: "terminated (SIGTERM)", signal.SIGHUP: "hung up (SIGHUP)"}


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent)


@pytest.fixture
def slow(agent, ref):
    """One call at a time, 300 ms each: a run lasts long enough to be stopped in the middle."""
    agent.score_concurrency = 1
    agent.save()
    ref.control(**{**NO_FAULTS, "latency_ms": 300})


def calls_done(at_least):
    return lambda out, err: ScoringRun.objects.filter(status=RunStatus.RUNNING, calls_done__gte=at_least).exists()


@pytest.mark.usefixtures("slow")
@pytest.mark.parametrize("name, args, sig", [
    ("score", ["--mode", "full", "--inline"], signal.SIGTERM),
    ("score", ["--mode", "full", "--inline"], signal.SIGHUP),
    ("candidates", ["--count", "100"], signal.SIGTERM),
])
def test_a_signal_cancels_a_run_done_here_and_names_itself(snapshot, tmp_path, name, args, sig):
    rc, out, err = signalled([name, snapshot.pk, *args], tmp_path, sig=sig, when=calls_done(1))

    run = ScoringRun.objects.get()
    assert rc == 128 + sig, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"CommandError: {REASONS[sig]}: run {run.pk} cancelled (")
    assert f"/{run.calls_total} calls were done)" in last
    # Nothing else would ever finish it: it says cancelled, and which signal stopped it.
    assert run.status == RunStatus.CANCELLED
    assert run.error == f"cancelled by command line: {REASONS[sig]} where it ran"
    assert Activity.objects.get(verb="cancelled run").actor_name == "command line"
    assert 1 <= run.calls_done < run.calls_total
    assert out.strip() in ("", str(run.pk))


def test_sigterm_while_waiting_stops_following_and_leaves_the_run_to_the_workers(snapshot, tmp_path):
    # No worker: the run stays queued, and is still queued after the signal.
    rc, out, err = signalled(["score", snapshot.pk, "--mode", "memory", "--key", "places/office", "--wait"],
                             tmp_path, sig=signal.SIGTERM, when=lambda out, err: " queued: " in err)

    run = ScoringRun.objects.get()
    assert rc == 143 and "Traceback" not in err, err
    assert out == f"{run.pk}\n"
    assert err.strip().splitlines()[-1] == (
        f"CommandError: terminated (SIGTERM): stopped following run {run.pk}, queued; "
        f"it is the workers' to finish (cancel it on its page, or with manage.py cancel_run {run.pk})")
    assert run.status == RunStatus.QUEUED


def test_sigterm_stops_following_a_training_job_not_the_job(agent, tmp_path):
    make_approved(agent, 1)

    rc, out, err = signalled(["send_training", "poc", "--wait"], tmp_path, sig=signal.SIGTERM,
                             when=lambda out, err: "waiting to be sent" in err)

    job = TrainJob.objects.get()
    assert rc == 143 and "Traceback" not in err, err
    assert out == f"{job.pk}\n"
    assert err.strip().splitlines()[-1] == (f"CommandError: terminated (SIGTERM): stopped following {job}, "
                                            "waiting to be sent; it is the workers' to finish (see the Training page)")
    assert job.status == TrainJob.Status.PENDING


@pytest.mark.usefixtures("slow")
def test_a_hangup_the_command_was_started_ignoring_lets_the_run_go_on(snapshot, tmp_path):
    # `nohup manage.py score ... --inline &`: closing the terminal must not stop it.
    def goes_on_then_terminate(proc):
        done = ScoringRun.objects.get().calls_done
        wait_for(lambda: ScoringRun.objects.get().calls_done >= done + 2, timeout=30,
                 message="more calls after the hangup")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)

    rc, out, err = signalled(["score", snapshot.pk, "--mode", "full", "--inline"], tmp_path, sig=signal.SIGHUP,
                             ignored={signal.SIGHUP}, when=calls_done(1), then=goes_on_then_terminate)

    run = ScoringRun.objects.get()
    assert rc == 143, err
    assert run.status == RunStatus.CANCELLED and "terminated (SIGTERM)" in run.error


class HandlersSeen(StringIO):
    """A command's stderr that notes the SIGTERM and SIGHUP handlers each time it is written."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def write(self, text):
        self.seen.add((signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)))
        return super().write(text)


def test_the_handlers_are_the_commands_only_while_it_runs_and_an_ignored_signal_stays_ignored(snapshot):
    def before(signum, frame):  # a handler of the program that calls the command
        raise AssertionError("not sent")

    previous = signal.signal(signal.SIGTERM, before), signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        err = HandlersSeen()
        call_command("score", snapshot.pk, "--mode", "full", "--inline", stdout=StringIO(), stderr=err)
        after = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGHUP, previous[1])

    [(term, hup)] = err.seen
    assert callable(term) and term is not before
    assert hup is signal.SIG_IGN
    assert after == (before, signal.SIG_IGN)
    assert ScoringRun.objects.get().status == RunStatus.SUCCEEDED


def test_a_command_in_another_thread_leaves_the_handlers_alone(snapshot):
    # signal.signal() only works in the main thread: a command run in another
    # (a test's, a program's) must neither fail on it nor change them.
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    command = CommandThread("score", snapshot.pk, "--mode", "full", "--inline")
    command.join(60)

    assert not command.failure and not command.thread.is_alive()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == handlers
    assert ScoringRun.objects.get().status == RunStatus.SUCCEEDED


def test_ctrl_c_while_a_call_hangs_exits_at_once_and_sends_it_no_more(snapshot, tmp_path, ref, agent):
    # The first call hangs for 20 s, and would be tried again (its retries:
    # minutes) although nothing would store its answer once the run is cancelled.
    agent.score_concurrency = 1
    agent.save()
    ref.control(**{**NO_FAULTS, "fail_rate": 1.0, "fail_mode": "hang", "hang_seconds": 20})
    started = []

    def sent_once_then_time_it(proc):
        started.append(time.monotonic())

    rc, out, err = signalled(["score", snapshot.pk, "--mode", "full", "--inline"], tmp_path, sig=signal.SIGINT,
                             when=lambda out, err: ref.stats()["calls"].get("score", 0) >= 1,
                             then=sent_once_then_time_it, timeout=60)

    assert time.monotonic() - started[0] < 10, "it waited for the hanging call"
    assert rc == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert ScoringRun.objects.get().status == RunStatus.CANCELLED
    time.sleep(1)
    assert ref.stats()["calls"].get("score", 0) == 1, "the cancelled run's call was sent again"
