"""The candidates command: a fine-tune run in this process; the candidates on
stdout, the run's id and progress on stderr."""

from scoring.models.runs import Mode

from . import _cli
from ._runs import Progress, add_option, get_snapshot, mode_options, report, run_here, start


class Command(_cli.Command):
    help = (
        "Find fine-tuning candidates in a snapshot in this process (a fine-tune run "
        "with no worker) and print them: id, divergence, the start of the response. "
        "Progress goes to stderr; Ctrl-C cancels the run."
    )

    def add_arguments(self, parser):
        parser.add_argument("snapshot", type=int, help="Snapshot id")
        for name, (_, field, agent_default) in mode_options([Mode.FINETUNE]).items():
            add_option(parser, name, field, agent_default)

    def handle(self, *args, snapshot, count, min_divergence, alternates, **options):
        params = {"count": count, "min_divergence": min_divergence, "alternates": bool(alternates)}
        run = start(get_snapshot(snapshot), Mode.FINETUNE, params, send=False, flags=set(params))
        self.err(f"run {run.pk}")
        run = run_here(run, Progress(self.err))
        report(run, self.out)
