"""Shared cast and real processes for the test suite.

- `cast`: a viewer, two reviewers, an operator and an outsider (no role).
- `refserver`: the reference inference server, a real process for the session;
  `ref` resets its faults before a test.
- `celery_worker`: a real Celery worker process on the test database and a
  queue of this test session's own.

Django modules are imported inside the fixtures: pytest imports this file
before pytest-django has configured Django's settings.
"""

import http.server
import os
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
ARTIFACTS = BASE_DIR / "test-artifacts"
PASSWORD = "pw-for-tests-123"
# Per process, not random: this module may be imported twice (as conftest and
# as tests.conftest) and both copies must name the same queue.
TEST_QUEUE = f"memscore-test-{os.getpid()}"
NO_FAULTS = dict(
    latency_ms=0, latency_per_token_us=0, capacity=0, fail_rate=0.0, fail_nth=[],
    fail_mode="http500", fail_endpoints=["score"], hang_seconds=600,
)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    # PBKDF2's million rounds cost ~1 s per user; tests make hundreds of users.
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield


@pytest.fixture(autouse=True)
def _private_cache(settings, request):
    # A fresh in-memory cache per test. Not the configured one: in CI that is
    # Redis, on the broker's database, where clearing it would drop queued tasks.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": request.node.nodeid}
    }


@pytest.fixture(scope="session", autouse=True)
def _own_celery_queue():
    from memscore_site.celery import app

    app.conf.task_default_queue = TEST_QUEUE
    os.environ["CELERY_QUEUE"] = TEST_QUEUE
    yield


# --- people -----------------------------------------------------------------

def ensure_role_groups():
    """A transactional test's flush empties the auth tables the migrations
    filled; make the permissions and role groups again when they are gone."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    from scoring.roles import sync_role_groups

    if not Group.objects.filter(name="operator").exists():
        create_permissions(apps.get_app_config("scoring"), verbosity=0)
        sync_role_groups(Group, Permission)


@pytest.fixture
def roles(db):
    ensure_role_groups()


class Cast:
    def __init__(self):
        from django.contrib.auth.models import Group, User

        ensure_role_groups()

        def make(name, role=None, **extra):
            user = User.objects.create_user(name, f"{name}@example.com", PASSWORD, **extra)
            if role:
                user.groups.add(Group.objects.get(name=role))
            return user

        self.viewer = make("vera", "viewer")
        self.reviewer = make("rita", "reviewer")
        self.reviewer2 = make("rob", "reviewer")
        self.operator = make("otto", "operator")
        self.outsider = make("nobody")
        self.password = PASSWORD

    def client_for(self, user):
        from django.test import Client

        client = Client(enforce_csrf_checks=False)
        client.force_login(user)
        return client


@pytest.fixture
def cast(db):
    return Cast()


# --- the reference server ---------------------------------------------------

@pytest.fixture(scope="session")
def refserver(tmp_path_factory):
    from refserver.testing import run_refserver

    with run_refserver(tmp_path_factory.mktemp("refserver-state")) as server:
        yield server


@pytest.fixture
def ref(refserver):
    refserver.control(**NO_FAULTS)
    yield refserver
    refserver.control(**NO_FAULTS)


@pytest.fixture
def agent(db, ref):
    from scoring.models import Agent

    return Agent.objects.create(name="poc", base_url=ref.base_url, model="memscore-ref")


@pytest.fixture
def offline_agent(db):
    """An agent whose server is not running: what needs no server (an import
    with token ids, a run refused before it is planned) must not call it."""
    from scoring.models import Agent

    return Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="memscore-ref")


@pytest.fixture(scope="module")
def api_servers(tmp_path_factory):
    """A reference server per API surface (vLLM's, SGLang's, memscore's own)."""
    from refserver.testing import run_refserver

    with (run_refserver(tmp_path_factory.mktemp("vllm"), "--api", "vllm") as vllm,
          run_refserver(tmp_path_factory.mktemp("sglang"), "--api", "sglang") as sglang,
          run_refserver(tmp_path_factory.mktemp("memscore"), "--api", "memscore") as memscore):
        yield {"vllm": vllm, "sglang": sglang, "memscore": memscore}


# --- a real Celery worker -----------------------------------------------------

def _database_url():
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class WorkerProcess:
    """`celery worker` as a child process; restartable, killable."""

    def __init__(self, log_path, concurrency=2):
        self.log_path = log_path
        self.concurrency = concurrency
        self.proc = None

    def env(self):
        env = dict(os.environ)
        env.update(DATABASE_URL=_database_url(), CELERY_QUEUE=TEST_QUEUE, PYTHONUNBUFFERED="1")
        return env

    def start(self, timeout=60):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "memscore_site", "worker", "-Q", TEST_QUEUE,
             "--pool=prefork", f"--concurrency={self.concurrency}", "--without-mingle",
             "--without-gossip", "-l", "info", "-n", f"test-{uuid.uuid4().hex[:8]}@%h"],
            cwd=BASE_DIR, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{self.log_path.read_text()[-3000:]}")
            if b" ready." in self.log_path.read_bytes():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready:\n{self.log_path.read_text()[-3000:]}")

    def kill(self):
        """SIGKILL the whole worker (main process and pool children)."""
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self):
        self.stop()
        with open(self.log_path, "ab") as f:
            f.write(b"\n--- restart ---\n")
        # Forget the old "ready." so start() waits for the new one.
        self.log_path.write_bytes(self.log_path.read_bytes().replace(b" ready.", b" (was ready)"))
        return self.start()


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    worker = WorkerProcess(tmp_path / "worker.log")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def fast_worker(monkeypatch, settings, transactional_db, tmp_path):
    """A celery_worker whose calls, like this process's, retry transient errors
    without the production backoff: set in the environment before it starts."""
    for name, value in [("MEMSCORE_RETRY_BACKOFF", 0.05), ("MEMSCORE_CALL_ATTEMPTS", 2)]:
        monkeypatch.setenv(name, str(value))
        setattr(settings, name, value)
    worker = WorkerProcess(tmp_path / "worker.log")
    worker.start()
    yield worker
    worker.stop()


def run_on_worker(run, timeout=120):
    """Send a run to the workers as the pages do; wait for it to succeed."""
    from scoring.followups import Followups
    from scoring.models import ScoringRun
    from scoring.tasks.enqueue import enqueue_on_commit

    enqueue_on_commit(Followups(runs=[run.pk]))

    def finished():
        run.refresh_from_db()
        return not run.is_active

    wait_for(finished, timeout=timeout, interval=0.2, message=f"run #{run.pk} to finish")
    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    return run


def wait_for(predicate, timeout=60, interval=0.2, message="condition"):
    """Poll until predicate() is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


class BeatProcess(WorkerProcess):
    """`celery beat` as a child process, sending the schedule to the test queue."""

    def start(self, timeout=60):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "memscore_site", "beat", "-l", "info",
             "-s", str(self.log_path.with_suffix(".schedule"))],
            cwd=BASE_DIR, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery beat exited:\n{self.log_path.read_text()[-3000:]}")
            if b"beat: Starting" in self.log_path.read_bytes():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"celery beat not started:\n{self.log_path.read_text()[-3000:]}")


@pytest.fixture
def celery_beat(transactional_db, tmp_path):
    beat = BeatProcess(tmp_path / "beat.log")
    beat.start()
    yield beat
    beat.stop()


@pytest.fixture
def fast_retries(settings):
    """Retries of transient server errors without the production backoff."""
    settings.MEMSCORE_RETRY_BACKOFF = 0.01
    settings.MEMSCORE_CALL_ATTEMPTS = 2


@contextmanager
def recording_server(answer):
    """A small HTTP server on a free port, for a server that is not an
    inference server: `answer(handler)` writes each response (GET and POST);
    yields (its root URL, [(path, Authorization header) of each request])."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            answer(self)

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def _redirect_elsewhere(handler):
    handler.send_response(307)
    handler.send_header("Location", f"http://127.0.0.1:9{handler.path}")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


@pytest.fixture
def redirecting_server():
    """A server answering every request with a redirect to another host's port 9:
    (its root URL, [(path, Authorization) of each request])."""
    with recording_server(_redirect_elsewhere) as found:
        yield found
