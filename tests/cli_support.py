"""A management command run in a thread of the test, for tests that watch it
while it waits (a `--wait` that follows a run or a job)."""

import threading
from io import StringIO

from django.core.management import CommandError, call_command
from django.db import connection


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
