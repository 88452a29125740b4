"""Management commands as the tests watch them: in a thread of the test, for
a `--wait` that follows a run or a job (CommandThread); or as a child process
sent a signal at a chosen moment (signalled)."""

import os
import signal
import subprocess
import sys
import threading
from io import StringIO

from django.core.management import CommandError, call_command
from django.db import connection

from tests.conftest import BASE_DIR, _database_url, wait_for


class CommandThread:
    """call_command(*args) in a thread: `out`, `err` (StringIO) fill as it
    goes; `failure` holds its CommandError, if any, once `join()` returns."""

    def __init__(self, *args):
        self.out, self.err, self.failure = StringIO(), StringIO(), []
        self.thread = threading.Thread(target=self._run, args=args)
        self.thread.start()

    def _run(self, *args):
        try:
            call_command(*args, stdout=self.out, stderr=self.err)
        except CommandError as e:
            self.failure.append(e)
        finally:
            connection.close()  # the thread's own, or it outlives the test

    def join(self, timeout=30):
        self.thread.join(timeout)


# What a shell that starts a command in the foreground leaves it: each of these
# at its default (a test runner started in the background may have some ignored).
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def manage(*args):
    """manage.py as a child process's command line."""
    return [sys.executable, "manage.py", *[str(a) for a in args]]


def child_env(**extra):
    """A child command's environment: the test database, unbuffered output, quick retries."""
    return {**os.environ, "DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1",
            "MEMSCORE_RETRY_BACKOFF": "0.01", "MEMSCORE_CALL_ATTEMPTS": "2", **extra}


def signalled(args, tmp_path, *, sig, when, ignored=(), then=None, timeout=60):
    """manage.py *args as a child process on the test database, sent `sig` once
    when(stdout, stderr) holds: (returncode, stdout, stderr).

    `ignored`: signals the child starts with ignored, as `nohup` ignores SIGHUP.
    `then(proc)`, if given, runs after `sig` is sent and before the wait for the end."""
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"

    def as_a_shell_starts_it():
        for each in STOPPING:
            signal.signal(each, signal.SIG_IGN if each in ignored else signal.SIG_DFL)

    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(manage(*args), cwd=BASE_DIR, env=child_env(),
                                stdout=out, stderr=err, preexec_fn=as_a_shell_starts_it)
    try:
        wait_for(lambda: when(out_path.read_text(), err_path.read_text()), timeout=timeout, interval=0.1,
                 message=f"the moment to send {signal.Signals(sig).name}")
        proc.send_signal(sig)
        if then is not None:
            then(proc)
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out_path.read_text(), err_path.read_text()
