from django.core.management.base import BaseCommand, CommandError

from scoring.models.runs import Mode

from ._runs import follow, get_snapshot, report, run_here, start


class Command(BaseCommand):
    help = (
        "Start a scoring run of a snapshot and print its id. With --wait, follow it "
        "until it ends; with --inline, do the work in this process (no worker needed). "
        "Exits non-zero when the run fails or only partly succeeds."
    )

    def add_arguments(self, parser):
        parser.add_argument("snapshot", type=int, help="Snapshot id")
        parser.add_argument("--mode", required=True, choices=Mode.values)
        parser.add_argument("--key", help="memory mode: the memory key to score")
        parser.add_argument("--count", type=int, help="finetune: score the last COUNT entries")
        parser.add_argument("--min-divergence", type=float, help="finetune: candidates' threshold (nats)")
        parser.add_argument("--alternates", action="store_true",
                            help="finetune: also generate what the model says without memories")
        parser.add_argument("--max-age", type=int, help="incremental: re-score after this many seconds")
        parser.add_argument("--response-window", type=int, help="incremental: responses per memory")
        parser.add_argument("--limit", type=int, help="incremental: memories to score at most")
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--wait", action="store_true", help="follow the run until it ends")
        how.add_argument("--inline", action="store_true", help="run it in this process")

    def handle(self, *args, snapshot, mode, wait, inline, **options):
        names = {
            Mode.MEMORY: ["key"],
            Mode.INCREMENTAL: ["max_age", "response_window", "limit"],
            Mode.FINETUNE: ["count", "min_divergence", "alternates"],
        }.get(mode, [])
        given = {n: options[n] for n in ("key", "count", "min_divergence", "max_age", "response_window", "limit")
                 if options[n] is not None}
        if options["alternates"]:
            given["alternates"] = True
        stray = sorted(set(given) - set(names))
        if stray:
            flags = ", ".join("--" + n.replace("_", "-") for n in stray)
            raise CommandError(f"{flags} does not apply to --mode {mode}")

        run = start(get_snapshot(snapshot), mode, given, enqueue=not inline)
        self.stdout.write(str(run.pk))
        if not (wait or inline):
            return
        run = run_here(run, self.stdout.write) if inline else follow(run, self.stdout.write)
        report(run, self.stdout.write)
