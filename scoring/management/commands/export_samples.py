"""`manage.py export_samples [AGENT]`: the approved samples as JSON lines on
stdout, the same bytes as the candidates' export page gives."""


from scoring import exporting

from . import _cli


class Command(_cli.Command):
    help = (
        "Print the approved samples (approved and trained candidates) as JSON lines on stdout, "
        "with where each came from: byte for byte what the web's /candidates/export.jsonl gives "
        "for the same agent, or for all agents. The JSONL an export-only agent's samples go out as."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "agent", nargs="?", default=None,
            help="the agent, by id or name (as ?agent= on the page); leave it out for every agent's samples",
        )

    def handle(self, *args, agent, **options):
        chosen = None
        if agent is not None:
            chosen = _cli.agent_arg(agent)
        for line in exporting.jsonl_lines(exporting.approved_samples(chosen)):
            self.out(line)
