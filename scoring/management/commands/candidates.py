from django.core.management.base import BaseCommand

from scoring.models.runs import Mode

from ._runs import get_snapshot, report, run_here, start


class Command(BaseCommand):
    help = (
        "Find fine-tuning candidates in a snapshot in this process (a fine-tune run "
        "with no worker) and print them: id, divergence, the start of the response."
    )

    def add_arguments(self, parser):
        parser.add_argument("snapshot", type=int, help="Snapshot id")
        parser.add_argument("--count", type=int, help="score the last COUNT entries (default: the agent's)")
        parser.add_argument("--min-divergence", type=float, help="threshold in nats (default: the agent's)")
        parser.add_argument("--alternates", action="store_true",
                            help="also generate what the model says without memories")

    def handle(self, *args, snapshot, count, min_divergence, alternates, **options):
        params = {"count": count, "min_divergence": min_divergence, "alternates": alternates}
        run = start(get_snapshot(snapshot), Mode.FINETUNE, params, send=False)
        self.stderr.write(f"run {run.pk}")
        run = run_here(run, self.stderr.write)
        report(run, self.stdout.write)
