"""send_training: the Training page's Send for one agent, from the command line.
Its refusals in the page's words, one job sent exactly once by a real worker,
--wait following it to the end (with real beat), its hints and Ctrl-C."""

import html
import os
import signal
import subprocess
import sys
import time
from io import StringIO

import pytest
from candidate_factory import make_approved, make_candidate
from django.core.management import CommandError, call_command
from django.urls import reverse

from scoring import outbox
from scoring.models import Activity, Candidate, TrainJob
from scoring.models.agents import TrainingTarget
from tests.cli_support import CommandThread
from tests.conftest import BASE_DIR, _database_url, wait_for
from tests.test_training_send import broker_at_closed_port


def send(*args):
    out, err = StringIO(), StringIO()
    try:
        call_command("send_training", *[str(a) for a in args], stdout=out, stderr=err)
    finally:
        send.out, send.err = out.getvalue().splitlines(), err.getvalue().splitlines()
    return send.out, send.err


def manage(*args, timeout=120):
    """manage.py as a child process on the test database: (returncode, stdout, stderr)."""
    env = {**os.environ, "DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "manage.py", *[str(a) for a in args]], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def page_error(cast, agent):
    """What the Training page says when Send is refused for the agent."""
    r = cast.client_for(cast.operator).post(reverse("train_send"), {"agent": agent.pk})
    assert r.status_code == 200
    return html.unescape(r.content.decode())


# --- refusals: the page's words, nothing made ---------------------------------------------------

def test_nothing_approved_is_refused_as_the_page_does(cast, agent):
    make_candidate(agent)  # pending: not sendable
    with pytest.raises(CommandError) as e:
        send(agent.name)
    assert str(e.value) == "Nothing to send: no approved candidates of poc are waiting."
    assert str(e.value) in page_error(cast, agent)
    assert e.value.returncode == 1 and send.out == []
    assert not TrainJob.objects.exists()


def test_an_export_only_agent_is_refused_with_the_outboxs_reason(cast, agent):
    make_approved(agent, 2)
    agent.training_target = TrainingTarget.NONE
    agent.save()
    with pytest.raises(CommandError) as e:
        send(agent.pk)
    assert str(e.value) == outbox.no_training_target_message(agent)
    assert str(e.value) in page_error(cast, agent)
    assert not TrainJob.objects.exists()


def test_an_unknown_agent_is_named(db):
    with pytest.raises(CommandError, match="no agent with id or name 'nobody'"):
        send("nobody")


def test_the_help_explains_every_option():
    from scoring.management.commands.send_training import Command

    text = " ".join(Command().create_parser("manage.py", "send_training").format_help().split())
    assert "by id or name" in text and "Prints the job's id" in text
    assert "--wait follow the job until it succeeds or fails" in text and "Ctrl-C stops following" in text


# --- sending: one job, posted once by a worker --------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_it_sends_one_job_that_a_worker_posts_once(cast, agent, ref, fast_worker):
    candidates = make_approved(agent, 3)
    posts = ref.stats()["train_posts"]

    out, err = send(agent.name)

    job = TrainJob.objects.get()
    assert out == [str(job.pk)]
    assert err == [f"sent 3 approved samples of poc as {job}"]
    assert set(job.samples.values_list("candidate_id", flat=True)) == {c.pk for c in candidates}
    assert Activity.objects.get(verb="sent to training", target_id=str(job.pk)).actor_name == "command line"
    # The pages say who sent it, as a run's say who started it.
    viewer = cast.client_for(cast.viewer)
    assert "sent by command line" in viewer.get(reverse("train_job_detail", args=[job.pk])).text
    assert "<td>command line</td>" in viewer.get(reverse("train_job_list")).text
    wait_for(lambda: TrainJob.objects.get().status == TrainJob.Status.QUEUED, timeout=60,
             message="the worker to post the job")
    assert ref.stats()["train_posts"] == posts + 1
    assert set(Candidate.objects.values_list("status", flat=True)) == {"trained"}
    # A second send (a double click) has nothing left.
    with pytest.raises(CommandError, match="^Nothing to send"):
        send(agent.name)
    assert TrainJob.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_says_the_job_waits_when_the_broker_is_down(agent):
    make_approved(agent, 1)
    with broker_at_closed_port():
        out, err = send(agent.name)
    job = TrainJob.objects.get()
    assert job.status == TrainJob.Status.PENDING and out == [str(job.pk)]
    assert err[-1] == (f"{job} is saved and queued, but the task queue (broker) cannot be reached: "
                       "it will be sent to the server when the broker is back.")


# --- --wait -------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_wait_follows_the_job_until_the_server_trained_it(agent, ref, fast_worker, celery_beat):
    make_approved(agent, 2)

    code, out, err = manage("send_training", "poc", "--wait")

    job = TrainJob.objects.get()
    assert code == 0, err
    assert out == f"{job.pk}\n"
    assert job.status == TrainJob.Status.SUCCEEDED
    lines = err.splitlines()
    assert lines[0] == f"sent 2 approved samples of poc as {job}"
    assert lines[-1] == f"{job} succeeded"
    assert f"{job} queued on server" in lines
    assert len(lines) == len(set(lines))  # once per change


@pytest.mark.django_db(transaction=True)
def test_wait_exits_1_when_the_server_rejects_the_job(agent, ref, fast_worker):
    good, bad = make_approved(agent, 2)
    # An id far outside the vocabulary: the server answers 400.
    Candidate.objects.filter(pk=bad.pk).update(continuation_ids=[10**9])

    code, out, err = manage("send_training", "poc", "--wait")

    job = TrainJob.objects.get()
    assert job.status == TrainJob.Status.FAILED and "HTTP 400" in job.last_error
    assert code == 1 and out == f"{job.pk}\n"
    assert f"CommandError: {job} failed: {job.last_error}" in err
    assert "Traceback" not in err


@pytest.mark.django_db(transaction=True)
def test_wait_hints_once_when_no_worker_takes_the_job(agent, monkeypatch):
    from scoring.management.commands import _runs

    monkeypatch.setattr(_runs, "QUEUED_HINT_SECONDS", 0.5)
    make_approved(agent, 1)
    command = CommandThread("send_training", "poc", "--wait")
    err, failure = command.err, command.failure
    try:
        wait_for(lambda: "still waiting to be sent" in err.getvalue(), timeout=20, message="the hint")
        time.sleep(1.2)  # more looks at the waiting job: the hint is not repeated
    finally:
        for job in TrainJob.objects.all():
            job.mark_failed("given up by the test")
        command.join()

    job = TrainJob.objects.get()
    assert err.getvalue().splitlines() == [
        f"sent 1 approved sample of poc as {job}",
        f"{job} waiting to be sent",
        "still waiting to be sent after 0.5 s: is a Celery worker running? (make demo starts one; "
        "else `celery -A memscore_site worker`)",
        f"{job} failed: given up by the test",
    ]
    assert failure and str(failure[0]) == f"{job} failed: given up by the test"


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_stops_following_not_the_job(agent, tmp_path):
    make_approved(agent, 1)
    env = {**os.environ, "DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1"}
    err_path = tmp_path / "stderr"
    with open(tmp_path / "stdout", "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "manage.py", "send_training", "poc", "--wait"], cwd=BASE_DIR,
                                env=env, stdout=out, stderr=err,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for(lambda: "waiting to be sent" in err_path.read_text(), timeout=60, interval=0.1,
                 message="the job to be followed")
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    job = TrainJob.objects.get()
    assert proc.returncode == 130
    assert (tmp_path / "stdout").read_text() == f"{job.pk}\n"
    text = err_path.read_text()
    assert f"interrupted: stopped following {job}, waiting to be sent; it is the workers' to finish" in text
    assert "Traceback" not in text
    assert job.status == TrainJob.Status.PENDING and job.samples.filter(live=True).count() == 1
