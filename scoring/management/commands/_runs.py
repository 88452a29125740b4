"""What the scoring commands share: finding a snapshot, following a run, reporting it."""

import threading
import time

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import connection

from scoring import modes
from scoring.engine import run_inline, start_run
from scoring.followups import Followups
from scoring.models import Snapshot
from scoring.models.runs import RunStatus
from scoring.tasks.enqueue import enqueue, enqueue_on_commit

ACTOR = "command line"


def get_snapshot(snapshot_id):
    snapshot = Snapshot.objects.select_related("agent").filter(pk=snapshot_id).first()
    if snapshot is None:
        raise CommandError(f"no snapshot with id {snapshot_id}")
    return snapshot


def start(snapshot, mode, params, *, send):
    """Start the run; send=True sends it to the workers, else run_here does the work."""
    try:
        run = start_run(snapshot, mode, params=params, actor_name=ACTOR)
    except ValidationError as e:
        problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in e.message_dict.items())
        raise CommandError(f"cannot start the run: {problems}") from None
    if send:
        enqueue_on_commit(Followups(runs=[run.pk]))
    return run


def progress_line(run):
    return (f"run {run.pk} {run.get_status_display()}: {run.calls_done + run.calls_failed}/"
            f"{run.calls_total} calls ({run.calls_failed} failed), {run.tokens_scored} tokens")


def follow(run, write, *, interval=0.5, while_alive=None, pause=time.sleep):
    """Print a progress line at each change until the run ends (or while_alive stops).

    pause(interval) waits between looks: run_here's returns as soon as its
    work thread ends, so the command does not sit out the rest of a pause."""
    last = None
    while True:
        run.refresh_from_db()
        line = progress_line(run)
        if line != last:
            write(line)
            last = line
        if not run.is_active or (while_alive is not None and not while_alive()):
            return run
        pause(interval)


def run_here(run, write):
    """run_inline in a thread while this one prints progress."""
    failure, followups = [], Followups()

    def work():
        try:
            run_inline(run, followups=followups)
        except BaseException as e:  # shown to the user below
            failure.append(e)
        finally:
            # This thread's own database connection: left open, it outlives the
            # thread (a caller that goes on, e.g. call_command in tests, keeps
            # a session the database cannot be dropped under).
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    follow(run, write, while_alive=thread.is_alive, pause=lambda seconds: thread.join(seconds))
    thread.join()
    if failure:
        raise CommandError(f"run {run.pk} stopped: {failure[0]!r}")
    # What workers may do later (pack the heatmap); nothing is lost without one.
    enqueue(followups)
    run.refresh_from_db()
    return follow(run, write)


def report(run, write):
    """The run's findings in words; CommandError when it did not succeed."""
    modes.get(run.mode).report(run, write)
    if run.status != RunStatus.SUCCEEDED:
        raise CommandError(f"run {run.pk} {run.get_status_display()}: {run.error or 'no reason given'}")
