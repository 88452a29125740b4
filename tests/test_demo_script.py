"""`make demo` (issue 12, defect 12): a second run reports the demo's own
snapshot, the runs are queued after the URL is printed, and no command warns
that the broker URL has no hostname."""

import importlib.util
import io
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command

from scoring.models import Agent, Snapshot

ROOT = Path(__file__).resolve().parent.parent


def load_demo_script():
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_second_seed_reports_the_demos_snapshot_not_the_latest(agent, ref):
    agent.delete()  # seed_demo creates its own "poc"
    call_command("seed_demo", "--base-url", ref.base_url, "--password", "pw-demo-123", stdout=io.StringIO())
    demo = Snapshot.objects.get()
    # The agent sent a newer snapshot since.
    newer = Snapshot.objects.create(agent=Agent.objects.get(name="poc"), taken_at=demo.taken_at + timedelta(days=3),
                                    source=Snapshot.Source.API)

    out = io.StringIO()
    call_command("seed_demo", "--base-url", ref.base_url, "--password", "pw-demo-123", stdout=out)

    assert f"snapshot {demo.pk} already there" in out.getvalue()
    assert f"snapshot {newer.pk} " not in out.getvalue()
    assert Snapshot.objects.count() == 2
    assert load_demo_script().demo_snapshot_id(out.getvalue()) == str(demo.pk)


def test_the_demo_queues_its_runs_after_printing_the_url():
    source = (ROOT / "scripts" / "demo.py").read_text()
    main = source[source.index("def main():"):source.index("def demo_snapshot_id")]
    assert main.index("memscore is running") < main.index('"score", snapshot')
    assert "--latency-per-token-us" in main  # and the server is slow enough to watch them


def test_a_command_prints_no_kombu_warning(tmp_path):
    # A fresh process without REDIS_URL: the filesystem broker, as `make demo` uses it.
    env = {"MEMSCORE_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'memscore_site.settings'); "
            "django.setup(); from memscore_site.celery import app; "
            "c = app.connection_for_write(); c.as_uri(); c._info(); c.release()")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "No hostname was supplied" not in done.stderr + done.stdout


# --- stopping: whichever way the demo ends, its children end with it ----------

def stat(pid):
    """(state, parent pid) of a process, from Linux's /proc; None once it is gone."""
    try:
        # After the command's "(name)", which may hold spaces and parentheses.
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def descendants(pid):
    """{pid: command line} of every process under pid."""
    parents = {int(p.name): stat(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, st in parents.items():
            if st and st[1] == parent:
                cmdline = (Path("/proc") / str(child) / "cmdline").read_bytes()
                found[child] = cmdline.replace(b"\0", b" ").decode()
                todo.append(child)
    return found


def alive(pid):
    st = stat(pid)
    return st is not None and st[0] != "Z"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_exit_inside_the_demo_stops_the_children_it_started(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMSCORE_VAR_DIR", str(tmp_path))
    demo = load_demo_script()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def main():  # the reference server is up when seed_demo's output names no snapshot
        demo.LOGS.mkdir(parents=True)
        demo.start("refserver", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ))
        demo.demo_snapshot_id("nothing useful")

    monkeypatch.setattr(demo, "main", main)
    try:
        with pytest.raises(SystemExit, match="seed_demo did not name the demo's snapshot"):
            demo.run()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    [(name, proc)] = demo.children
    assert proc.poll() is not None


CHILDREN = {"refserver": " -m refserver ", "worker": " worker ", "beat": " beat ", "web": " runserver "}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the processes from /proc")
@pytest.mark.parametrize("dies", ["worker", "web"])
def test_when_one_child_exits_the_demo_stops_all_the_others_and_frees_the_ports(tmp_path, dies):
    web_port, ref_port = free_port(), free_port()
    # SQLite and the embedded broker under tmp_path, whatever the tests run on.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_QUEUE")}
    env.update(MEMSCORE_VAR_DIR=str(tmp_path), DEMO_PORT=str(web_port), REFSERVER_PORT=str(ref_port))
    out = tmp_path / "demo.out"
    demo = subprocess.Popen([sys.executable, "scripts/demo.py"], cwd=ROOT, env=env, stdout=out.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    started = {}
    try:
        deadline = time.monotonic() + 180
        while "    finetune: " not in out.read_text():  # up, and its runs queued
            assert demo.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        started = descendants(demo.pid)
        children = {name: pid for pid, cmd in started.items() if stat(pid)[1] == demo.pid
                    for name, part in CHILDREN.items() if part in f" {cmd}"}
        assert set(children) == set(CHILDREN), started
        assert len(started) == 6, started  # and the worker's pool of 2

        os.kill(children[dies], signal.SIGKILL)

        demo.wait(timeout=15)
        time.sleep(0.5)  # the pool's processes die with their worker (Celery sets PDEATHSIG)
        assert [cmd for pid, cmd in started.items() if alive(pid)] == []
        port_in_use = load_demo_script().port_in_use
        assert not port_in_use(web_port) and not port_in_use(ref_port)
        assert f"{dies} exited with -{signal.SIGKILL.value}" in out.read_text()
        # A worker is stopped as `celery worker` asks (its main process only):
        # no calls of its pool's processes cut short.
        assert "exited with 'signal 15 (SIGTERM)'" not in (tmp_path / "logs" / "worker.log").read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
        for pid in started:  # only what this demo started, should the test fail
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
