"""score and candidates as a user runs them: stdout for scripts (the run id, the
findings), progress once per change on stderr, a closed stdout or a Ctrl-C without
a traceback, no result-like summary of a failed run, a hint when nothing takes a
queued run, and options named as typed."""

import signal
import subprocess
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from scoring.models import Activity, CellScore, ScoringRun
from scoring.models.runs import RunStatus
from tests.cli_support import CommandThread, child_env, manage, signalled
from tests.conftest import BASE_DIR, NO_FAULTS, wait_for
from tests.engine_support import make_snapshot, private_refserver  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]


@pytest.fixture
def snapshot(agent):
    return make_snapshot(agent)


def command(name, *args):
    """(stdout lines, stderr lines) of a command run in this process."""
    out, err = StringIO(), StringIO()
    try:
        call_command(name, *[str(a) for a in args], stdout=out, stderr=err)
    finally:
        command.out, command.err = out.getvalue().splitlines(), err.getvalue().splitlines()
    return command.out, command.err


# --- defect 1: a closed stdout, Ctrl-C ----------------------------------------------------------

def test_score_inline_piped_into_head_finishes_the_run_without_a_traceback(snapshot):
    # RUN=$(manage.py score 1 --mode full --inline | head -1): the reader wanted the id.
    done = subprocess.run(
        ["bash", "-c", "set -o pipefail; " + " ".join(manage("score", snapshot.pk, "--mode", "full", "--inline"))
         + " | head -1"],
        cwd=BASE_DIR, env=child_env(), capture_output=True, text=True, timeout=120,
    )

    run = ScoringRun.objects.get()
    assert done.stdout == f"{run.pk}\n"
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 0
    assert run.status == RunStatus.SUCCEEDED and run.calls_done == run.calls_total


def interrupt(args, tmp_path, *, when, timeout=60):
    """Start manage.py, send SIGINT (Ctrl-C) once when(stdout, stderr) holds; (returncode, stdout, stderr)."""
    return signalled(args, tmp_path, sig=signal.SIGINT, when=when, timeout=timeout)


def some_calls_done(out, err):
    return ScoringRun.objects.filter(status=RunStatus.RUNNING, calls_done__gte=1).exists()


@pytest.mark.parametrize("name, args", [
    ("score", ["--mode", "full", "--inline"]),
    ("candidates", ["--count", "100"]),
])
def test_ctrl_c_cancels_a_run_done_here_and_says_so_in_one_line(snapshot, agent, ref, tmp_path, name, args):
    agent.score_concurrency = 1
    agent.save()
    ref.control(**{**NO_FAULTS, "latency_ms": 300})

    rc, out, err = interrupt([name, snapshot.pk, *args], tmp_path, when=some_calls_done)

    run = ScoringRun.objects.get()
    assert rc == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"CommandError: interrupted: run {run.pk} cancelled (")
    assert f"/{run.calls_total} calls were done)" in last
    # Nothing else would ever finish it: it says cancelled, and why.
    assert run.status == RunStatus.CANCELLED and "interrupted" in run.error
    assert run.error.startswith("cancelled by command line: ")
    assert Activity.objects.get(verb="cancelled run").actor_name == "command line"
    assert out.strip() in ("", str(run.pk))


def test_ctrl_c_while_waiting_stops_following_and_leaves_the_run_to_the_workers(snapshot, tmp_path):
    # No worker: the run stays queued, and is still queued after the interrupt.
    rc, out, err = interrupt(["score", snapshot.pk, "--mode", "memory", "--key", "places/office", "--wait"],
                             tmp_path, when=lambda out, err: " queued: " in err)

    run = ScoringRun.objects.get()
    assert rc == 130 and "Traceback" not in err, err
    assert out == f"{run.pk}\n"
    assert err.strip().splitlines()[-1] == (
        f"CommandError: interrupted: stopped following run {run.pk}, queued; "
        f"it is the workers' to finish (cancel it on its page, or with manage.py cancel_run {run.pk})")
    assert run.status == RunStatus.QUEUED


# --- defects 2 and 3: progress once, on stderr -------------------------------------------------

@pytest.mark.parametrize("name, args, findings", [
    # The run id, "8 memories, 56 cells", the 5 most important under a heading, the page.
    ("score", ["--mode", "full", "--inline"], 9),
    ("candidates", ["--count", "100", "--min-divergence", "1e9"], 1),  # "0 candidates (0 new)"
])
def test_stdout_has_the_id_and_findings_and_stderr_each_progress_line_once(snapshot, name, args, findings):
    out, err = command(name, snapshot.pk, *args)

    run = ScoringRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED
    assert len(out) == findings and not any(line.startswith(f"run {run.pk} ") for line in out)
    progress = [line for line in err if line.startswith(f"run {run.pk} ")]
    assert progress[-1].startswith(f"run {run.pk} succeeded: {run.calls_total}/{run.calls_total} calls")
    assert len(progress) == len(set(progress)), progress


# --- defect 4: no result-like summary of a failed run ------------------------------------------

def test_a_partial_run_counts_its_scored_and_failed_cells(snapshot, agent, ref):
    agent.score_concurrency = 1
    agent.save()
    ref.control(**{**NO_FAULTS, "fail_nth": [3, 4, 5, 6]})  # two leave-one-outs fail after their retry

    with pytest.raises(CommandError, match="finished with failures"):
        command("score", snapshot.pk, "--mode", "full", "--inline")

    run = ScoringRun.objects.get()
    assert run.status == RunStatus.PARTIAL
    failed = CellScore.objects.filter(run=run, failed=True).count()
    scored = CellScore.objects.filter(run=run, failed=False).count()
    assert failed and scored
    assert command.out[-2] == (f"of the {scored + failed} cells, {scored} scored and {failed} failed "
                               "(a failed cell has no score, never 0)")
    assert command.out[-1] == f"page: /runs/{run.pk}/ (heatmap /runs/{run.pk}/heatmap/)"


@pytest.mark.parametrize("name, args", [
    ("score", ["--mode", "estimate", "--ablations", "8", "--inline"]),
    ("score", ["--mode", "full", "--inline"]),
    ("candidates", ["--count", "10"]),
])
def test_a_failed_run_prints_nothing_that_looks_like_a_result(snapshot, ref, name, args):
    ref.control(**{**NO_FAULTS, "fail_rate": 1.0})

    with pytest.raises(CommandError, match="failed"):
        command(name, snapshot.pk, *args)

    run = ScoringRun.objects.get()
    assert run.status == RunStatus.FAILED
    # score's stdout is its run id alone; candidates' is empty (no "0 candidates (0 new)").
    assert command.out == ([str(run.pk)] if name == "score" else [])


# --- defect 5: a run nobody takes ---------------------------------------------------------------

def test_waiting_on_a_run_no_worker_takes_says_so_once(snapshot, monkeypatch):
    from scoring.management.commands import _runs

    monkeypatch.setattr(_runs, "QUEUED_HINT_SECONDS", 0.5)
    command = CommandThread("score", snapshot.pk, "--mode", "memory", "--key", "places/office", "--wait")
    out, err, failure = command.out, command.err, command.failure
    try:
        wait_for(lambda: "still queued after" in err.getvalue(), timeout=20, message="the hint")
        time.sleep(1.2)  # more looks at the queued run: the hint is not repeated
    finally:
        for run in ScoringRun.objects.all():
            run.cancel()
        command.join()

    run = ScoringRun.objects.get()
    hints = [line for line in err.getvalue().splitlines() if line.startswith("still queued after")]
    assert hints == ["still queued after 0.5 s: is a Celery worker running? (make demo starts one; "
                     "else `celery -A memscore_site worker`, or score with --inline instead)"]
    assert out.getvalue() == f"{run.pk}\n"
    assert failure and f"run {run.pk} cancelled" in str(failure[0])


# --- defect 7: help and option names ------------------------------------------------------------

def help_of(name):
    from django.core.management import load_command_class

    text = load_command_class("scoring", name).create_parser("manage.py", name).format_help()
    return " ".join(text[text.index("\noptions:"):].split())


def test_every_option_says_what_it_does_and_its_default():
    score = help_of("score")
    assert "--mode {full,memory,incremental,finetune,estimate,groups} what to score." in score
    for option, default in [("--count COUNT", "200"), ("--min-divergence MIN_DIVERGENCE", "1.0"),
                            ("--max-age MAX_AGE", "21600 s = 6 h"), ("--response-window RESPONSE_WINDOW", "20"),
                            ("--limit LIMIT", "10")]:
        after = score[score.index(option) + len(option):]
        assert after.index(f"[the agent's setting; {default} for a new agent]") < after.index(" --"), option
    after = score[score.index("--ablations ABLATIONS"):]
    assert after.index("; from 8 to 10000") < after.index(" --seed")
    assert "[the agent's setting; 200 for a new agent]" in help_of("candidates")


def test_a_bad_value_names_the_option_as_typed(snapshot):
    with pytest.raises(CommandError) as e:
        command("candidates", snapshot.pk, "--count", "0")
    assert str(e.value) == "cannot start the run: --count: must be at least 1"
    with pytest.raises(CommandError) as e:
        command("score", snapshot.pk, "--mode", "incremental", "--max-age", "-1", "--response-window", "0")
    assert str(e.value) == "cannot start the run: --max-age: must be at least 0; --response-window: must be at least 1"
