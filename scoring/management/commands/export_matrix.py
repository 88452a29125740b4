"""export_matrix: a run's cells as CSV or JSON, the same bytes as the heatmap page's downloads."""

import os
import sys

from django.core.management.base import CommandError

from scoring.heatmap import export
from scoring.heatmap.matrix import load_matrix
from scoring.models import ScoringRun

from . import _cli


class Command(_cli.Command):
    help = (
        "Write a run's cells to stdout, one record per memory and response: the signed delta, "
        "its importance and its state (scored, estimated, unaffected, failed, missing or not_in_run). The same export "
        "as the heatmap page's CSV and JSON downloads (docs/scoring.md, Exports)."
    )

    def add_arguments(self, parser):
        parser.add_argument("run", type=int, help="Scoring run id")
        parser.add_argument("--format", choices=["csv", "json"], default="csv",
                            help="csv (a header line, then a record per line) or json (one document) [csv]")

    def handle(self, *args, run, format, **options):
        found = ScoringRun.objects.select_related("agent").filter(pk=run).first()
        if found is None:
            raise CommandError(f"no scoring run with id {run}")
        if not load_matrix(found, cells=False)["memories"]:
            raise CommandError(f"run {run} ({found.get_mode_display()}) has no memory × response cells")
        if found.is_active:
            self.stderr.write(f"run {run} is still {found.get_status_display()}: cells not scored yet are 'missing'")
        elif found.status != ScoringRun.Status.SUCCEEDED:
            # stdout has no file name to carry it, as the page's downloads do.
            self.stderr.write(f"run {run} {found.get_status_display()}: cells it never scored are 'missing' or "
                              "'failed', not zero")
        chunks = export.csv_lines(found) if format == "csv" else export.json_chunks(found)
        try:
            for chunk in chunks:
                # ending="": the bytes must be the page's, line ends included.
                self.stdout.write(chunk, ending="")
            self.stdout.flush()
        except BrokenPipeError:
            # The reader stopped early (`| head`): what it read is all it wanted. Python
            # would report the pipe again as it flushes stdout on exit; point it at /dev/null.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
