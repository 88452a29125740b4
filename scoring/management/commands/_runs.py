"""What the scoring commands share: finding a snapshot, starting a run,
following it (progress on stderr), running it here, reporting it (stdout)."""

import threading
import time

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, Q
from django.urls import reverse

from scoring import modes
from scoring.engine import run_inline, start_run
from scoring.followups import Followups
from scoring.models import Agent, CellScore, Snapshot
from scoring.models.runs import RunStatus
from scoring.tasks.enqueue import enqueue, enqueue_on_commit

from ._cli import agent_arg, ignoring_interrupts, interruption, plural, stopped_following

ACTOR = "command line"
# score --wait: a run still queued this long says that no worker took it.
QUEUED_HINT_SECONDS = 15


def get_snapshot(snapshot_id):
    snapshot = Snapshot.objects.select_related("agent").filter(pk=snapshot_id).first()
    if snapshot is None:
        raise CommandError(f"no snapshot with id {snapshot_id} (`manage.py snapshots AGENT` lists an agent's; "
                           "or give the agent's name to use its latest)")
    return snapshot


def snapshot_arg(value):
    """The snapshot `value` names: a snapshot id, or an agent (by name, as
    agent_arg finds it) meaning its latest snapshot (the one background
    scoring takes). A number is always a snapshot id."""
    if str(value).isdigit():
        return get_snapshot(int(value))
    agent = agent_arg(value)
    snapshot = Snapshot.objects.select_related("agent").filter(agent=agent).order_by("-taken_at", "-id").first()
    if snapshot is None:
        raise CommandError(f"agent {agent.name} has no snapshot yet (import_snapshot imports one)")
    return snapshot


def flag(name):
    return "--" + name.replace("_", "-")


def mode_options(chosen=None):
    """{option name: (its modes, a field)}: every mode's parameters (or only
    the modes named in chosen), as options."""
    options = {}
    for mode in modes.all():
        if chosen is None or mode.name in chosen:
            for name, field in mode.Params.base_fields.items():
                options.setdefault(name, ([], field, mode.Params.agent_defaults.get(name)))[0].append(mode.name)
    return options


def option_help(field, agent_default=None):
    """The field's help, its range where it has both ends, and the agent's
    setting it defaults to (with a new agent's value)."""
    text = str(field.help_text)
    low, high = getattr(field, "min_value", None), getattr(field, "max_value", None)
    if low is not None and high is not None and high < 2**31 - 1:
        text += f"; from {low} to {high}"
    if agent_default is not None:
        default = Agent._meta.get_field(agent_default).default
        if "seconds" in str(field.label).lower() and default % 3600 == 0:
            default = f"{default} s = {default // 3600} h"
        text += f" [the agent's setting; {default} for a new agent]"
    return text.replace("%", "%%")  # argparse formats help with %


def add_option(parser, name, field, agent_default=None):
    help_text = option_help(field, agent_default)
    if isinstance(field.widget, forms.CheckboxInput):
        parser.add_argument(flag(name), action="store_true", default=None, help=help_text)
    else:
        kind = {forms.IntegerField: int, forms.FloatField: float}.get(type(field), str)
        parser.add_argument(flag(name), type=kind, help=help_text)


def start(snapshot, mode, params, *, send, flags=()):
    """Start the run; send=True sends it to the workers, else run_here does the work.

    `flags`: the parameters the command takes as options; a problem with one
    names the option (--max-age), not the form's field (max_age)."""

    def where(field):
        if field == NON_FIELD_ERRORS:
            return ""
        return f"{flag(field) if field in flags else field}: "

    try:
        run = start_run(snapshot, mode, params=params, actor_name=ACTOR)
    except ValidationError as e:
        problems = "; ".join(f"{where(field)}{' '.join(msgs)}" for field, msgs in e.message_dict.items())
        raise CommandError(f"cannot start the run: {problems}") from None
    if send:
        enqueue_on_commit(Followups(runs=[run.pk]))
    return run


def progress_line(run):
    return (f"run {run.pk} {run.get_status_display()}: {run.calls_done + run.calls_failed}/"
            f"{run.calls_total} calls ({run.calls_failed} failed), {run.tokens_scored} tokens")


class Progress:
    """Writes a run's progress line each time it changes, never the same one
    twice; with hint_after, says once when the run stays queued that long."""

    def __init__(self, write, *, hint_after=None, clock=time.monotonic):
        self.write, self.hint_after, self.clock = write, hint_after, clock
        self.last, self.hinted, self.since = None, False, clock()

    def show(self, run):
        line = progress_line(run)
        if line != self.last:
            self.write(line)
            self.last = line
        if (self.hint_after is not None and not self.hinted and run.status == RunStatus.QUEUED
                and self.clock() - self.since >= self.hint_after):
            self.hinted = True
            self.write(f"still queued after {self.hint_after:g} s: is a Celery worker running? (make demo starts "
                       "one; else `celery -A memscore_site worker`, or score with --inline instead)")


def follow(run, progress, *, interval=0.5, while_alive=None, pause=time.sleep):
    """Show progress at each change until the run ends (or while_alive stops).

    pause(interval) waits between looks: run_here's returns as soon as its
    work thread ends, so the command does not sit out the rest of a pause."""
    while True:
        run.refresh_from_db()
        progress.show(run)
        if not run.is_active or (while_alive is not None and not while_alive()):
            return run
        pause(interval)


def follow_workers(run, progress):
    """score --wait: follow a run the workers do. Ctrl-C (SIGTERM, SIGHUP) stops following, not the run."""
    try:
        return follow(run, progress)
    except KeyboardInterrupt as e:
        run.refresh_from_db()
        where = f"cancel it on its page, or with manage.py cancel_run {run.pk}"
        raise stopped_following(e, f"run {run.pk}, {run.get_status_display()}", where) from None


def run_here(run, progress):
    """run_inline in a thread while this one shows progress. Ctrl-C (SIGTERM,
    SIGHUP) cancels the run: the work stops with this process and nothing else
    would take it up."""
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
    try:
        follow(run, progress, while_alive=thread.is_alive, pause=lambda seconds: thread.join(seconds))
        thread.join()
        if failure:
            raise CommandError(f"run {run.pk} stopped: {failure[0]!r}")
        # What workers may do later (pack the heatmap); nothing is lost without one.
        enqueue(followups)
        # Ended by now, unless a worker shares it: then until they are done.
        return follow(run, progress)
    except KeyboardInterrupt as e:
        with ignoring_interrupts():
            raise _cancelled_here(run, thread, interruption(e)) from None


def _cancelled_here(run, thread, stop):
    if run.cancel(actor_name=ACTOR, why=f"{stop.why} where it ran"):
        # The work thread sees it at its next call and stops; results in flight are discarded.
        thread.join(5)
        run.refresh_from_db()
        done = f"{run.calls_done + run.calls_failed}/{run.calls_total} calls were done"
        return CommandError(f"{stop.headline}: run {run.pk} cancelled ({done})", returncode=stop.returncode)
    return CommandError(f"{stop.headline}: run {run.pk} had already ended ({run.get_status_display()})",
                        returncode=stop.returncode)


def report(run, write, *, page=False):
    """The run's findings in words; CommandError when it did not succeed.

    Nothing that reads like a result for a run that failed or was cancelled;
    a partial one says how many of its cells failed. page=True: then the
    path of the run's page (and heatmap)."""
    if run.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL):
        modes.get(run.mode).report(run, write)
        cells = CellScore.objects.filter(run=run).aggregate(all=Count("pk"), failed=Count("pk", filter=Q(failed=True)))
        failed, scored = cells["failed"], cells["all"] - cells["failed"]
        if failed:
            write(f"of the {plural(scored + failed, 'cell')}, {scored} scored and {failed} failed "
                  "(a failed cell has no score, never 0)")
        if page:
            # A path, not a URL: no setting holds the site's address.
            write(f"page: {reverse('run_detail', args=[run.pk])}"
                  + (f" (heatmap {reverse('heatmap', args=[run.pk])})" if modes.get(run.mode).has_heatmap else ""))
    if run.status != RunStatus.SUCCEEDED:
        raise CommandError(f"run {run.pk} {run.get_status_display()}: {run.error or 'no reason given'}")
