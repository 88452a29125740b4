"""The score command: start a run of any mode, follow it or run it here.

stdout carries what scripts read: the run id first, then the findings of a
run that --wait or --inline saw end; progress goes to stderr."""

from django.core.management.base import CommandError

from scoring import modes
from scoring.models.runs import Mode

from . import _cli, _runs
from ._runs import (
    Progress,
    add_option,
    follow_workers,
    mode_options,
    report,
    run_here,
    snapshot_arg,
    start,
)

# A mode whose label is only its name, in words for --help.
CLI_WORDS = {"incremental": "the memories due (never scored, or not within max-age), each over its latest "
                            "responses: what background scoring runs"}


class Command(_cli.Command):
    help = (
        "Start a scoring run of a snapshot and print its id (stdout). With --wait, follow it "
        "until it ends; with --inline, do the work in this process (no worker needed). "
        "Progress goes to stderr, the run's findings to stdout. "
        "Exits non-zero when the run fails or only partly succeeds."
    )

    def add_arguments(self, parser):
        parser.add_argument("snapshot", help="snapshot id, or an agent's name: its latest snapshot")
        kinds = "; ".join(f"{name}: {CLI_WORDS.get(name, Mode(name).label)}" for name in modes.names())
        parser.add_argument("--mode", required=True, choices=modes.names(),
                            help=f"what to score. {kinds} (docs/scoring.md, The modes)")
        for name, (_, field, agent_default) in mode_options().items():
            add_option(parser, name, field, agent_default)
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--wait", action="store_true",
                         help="follow the run until it ends (a Celery worker does it; Ctrl-C, SIGTERM or "
                         "SIGHUP stops following, not the run)")
        how.add_argument("--inline", action="store_true",
                         help="run it in this process, no worker needed (Ctrl-C, SIGTERM or SIGHUP "
                         "cancels the run)")

    def handle(self, *args, snapshot, mode, wait, inline, **options):
        params = {}
        for name, (used_by, _, _) in mode_options().items():
            if options.get(name) is None:
                continue
            if mode not in used_by:
                raise CommandError(f"--{name.replace('_', '-')} does not apply to --mode {mode}")
            params[name] = options[name]

        chosen = snapshot_arg(snapshot)
        if not snapshot.isdigit():
            self.err(f"agent {chosen.agent.name}: its latest snapshot, {chosen.pk} "
                     f"(taken {chosen.taken_at:%Y-%m-%d %H:%M})")
        run = start(chosen, mode, params, send=not inline, flags=set(mode_options()))
        self.out(str(run.pk))
        if inline:
            run = run_here(run, Progress(self.err))
        elif wait:
            run = follow_workers(run, Progress(self.err, hint_after=_runs.QUEUED_HINT_SECONDS))
        else:
            return
        report(run, self.out, page=True)
