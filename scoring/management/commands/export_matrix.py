"""export_matrix: a run's memories × responses importances as CSV or JSON."""

import csv
import json

from django.core.management.base import BaseCommand, CommandError

from scoring.heatmap.matrix import load_matrix
from scoring.maths import ZERO_THRESHOLD, cell_importance
from scoring.models import ScoringRun


class Command(BaseCommand):
    help = (
        "Write a run's memories × responses matrix to stdout. Cells are divergences "
        f"(deltas at or below {ZERO_THRESHOLD} count as 0), empty/null where the cell failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("run", type=int, help="Scoring run id")
        parser.add_argument("--format", choices=["csv", "json"], default="csv")

    def handle(self, *args, run, format, **options):
        found = ScoringRun.objects.filter(pk=run).first()
        if found is None:
            raise CommandError(f"no scoring run with id {run}")
        matrix = load_matrix(found)
        if not matrix["memories"]:
            raise CommandError(f"run {run} ({found.get_mode_display()}) has no memory × response cells")
        if found.is_active:
            self.stderr.write(f"run {run} is still {found.get_status_display()}: missing cells are empty")
        cells = [[cell_importance(d) for d in row] for row in matrix["deltas"]]
        if format == "json":
            self.stdout.write(json.dumps({
                "memories": [m["key"] for m in matrix["memories"]],
                "responses": [{"index": r["index"], "text": r["text"]} for r in matrix["responses"]],
                "cells": cells,
            }))
            return
        writer = csv.writer(self.stdout, lineterminator="\n")
        writer.writerow(["memory"] + [r["index"] for r in matrix["responses"]])
        for memory, row in zip(matrix["memories"], cells):
            writer.writerow([memory["key"]] + ["" if v is None else repr(v) for v in row])
