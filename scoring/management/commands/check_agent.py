"""`manage.py check_agent NAME`: will this agent's server give right numbers?

One line per check (ok, FAIL or skip, its name, what was found and what to
change); exits non-zero when any check fails. The checks are scoring.checks.
"""

from django.core.management.base import CommandError

from scoring.checks import check_agent

from . import _cli


class Command(_cli.Command):
    help = (
        "Check the agent's inference server (a few seconds; each question waits 20 s at most): it answers, "
        "serves the model, tokenizes nodes as a whole, gives spans and finite scores, and answers /train "
        "if the agent trains. Exits non-zero when a check fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The agent's name or id (as export_samples and send_training take it)")

    def handle(self, *args, name, **options):
        agent = _cli.agent_arg(name)
        results = check_agent(agent)
        for result in results:
            line = f"{result.label:<4}  {result.name}: {result.message}"
            self.stdout.write(self.style.ERROR(line) if result.ok is False else line)
        failures = [r.name for r in results if r.ok is False]
        if failures:
            raise CommandError(f"{_cli.plural(len(failures), 'check')} failed: {', '.join(failures)}")
        self.stdout.write(self.style.SUCCESS(f"{agent.name}: every check passed."))
