"""Whether this worker is shutting down: then the Executor claims no more calls.

Celery's warm shutdown (SIGTERM, a first Ctrl-C) waits for the running
tasks, and a run's task would otherwise go on claiming calls until the run
is done (most of an hour for a large one). scoring.tasks calls request()
when the worker begins to shut down; the Executor then finishes only the
calls in flight, stores them and asks for the run to be sent again.

Celery announces the shutdown in the worker's main process, but runs the
tasks of the prefork pool in child processes: a plain global set there would
stay False in them. So the flag is a byte of shared memory, created when this
module is first imported. Celery's worker imports the task modules (and so
this one) in its main process before the pool forks its children
(WorkController.__init__ -> loader.init_worker), so every child, including
one forked later to replace another, maps the same byte and sees the main
process's write. This needs the pool's default fork start method (Linux).
The threads and solo pools run tasks in the main process itself.
"""

import multiprocessing

# A RawValue, without Value's lock: a whole byte is written and read at once,
# and a lock shared with the pool's children could be held by one that was
# killed, or by the code a signal handler (request()) interrupted.
_requested = multiprocessing.RawValue("b", 0)


def request():
    """Ask every task of this worker to stop claiming (safe in a signal handler)."""
    _requested.value = 1


def requested():
    return _requested.value == 1
