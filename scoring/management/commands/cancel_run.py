"""`manage.py cancel_run RUN [RUN ...]`: what a run page's Cancel does, for
scripts: one line per run on stdout."""

from django.core.management.base import CommandError

from scoring.models import ScoringRun

from . import _cli
from ._runs import ACTOR


class Command(_cli.Command):
    help = (
        "Cancel active (queued or running) scoring runs, as the Cancel button of a run's page does: "
        "workers stop claiming its calls and discard results still in flight. Prints one line per run: "
        "cancelled, with how many calls were done, or already ended, with how. All the ids are checked "
        "first: if any is not a run, nothing is cancelled and the command exits 1 naming it. "
        "A run that had already ended is not an error."
    )

    def add_arguments(self, parser):
        parser.add_argument("runs", nargs="+", type=int, metavar="RUN", help="a run's id (as `score` prints it)")

    def handle(self, *args, runs, **options):
        ids = list(dict.fromkeys(runs))  # each once, in the order given
        found = ScoringRun.objects.in_bulk(ids)
        missing = [str(pk) for pk in ids if pk not in found]
        if missing:
            which = f"run with id {missing[0]}" if len(missing) == 1 else f"runs with ids {', '.join(missing)}"
            raise CommandError(f"no {which}; nothing was cancelled")
        for pk in ids:
            run = found[pk]
            if run.cancel(actor_name=ACTOR):
                done = f"{run.calls_done + run.calls_failed}/{run.calls_total} calls were done"
                self.out(f"run {run.pk} cancelled ({done})")
            else:
                self.out(f"run {run.pk} had already ended ({run.get_status_display()})")
