"""`manage.py add_agent NAME --url URL --model MODEL`: an agent and its
snapshot-API token, for scripted set-ups."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from scoring.models import Activity, Agent


class Command(BaseCommand):
    help = "Create an agent and print its id and a new snapshot-API token (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--url", required=True, help="Inference base URL, e.g. http://host:8000/v1")
        parser.add_argument("--model", required=True, help="Model name the server serves")
        parser.add_argument("--api-key-env", default="", help="Read the server's API key from this variable")
        parser.add_argument("--concurrency", type=int, default=None, help="Score calls in flight per run")

    def handle(self, *args, name, url, model, api_key_env, concurrency, **options):
        if Agent.objects.filter(name=name).exists():
            raise CommandError(f"an agent named {name!r} already exists")
        agent = Agent(name=name, base_url=url, model=model, api_key_env=api_key_env)
        if concurrency is not None:
            agent.score_concurrency = concurrency
        try:
            agent.full_clean()
        except ValidationError as e:
            problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in e.message_dict.items())
            raise CommandError(f"invalid agent: {problems}") from None
        agent.save()
        token = agent.issue_ingest_token()
        Activity.record(None, "created agent", agent, actor_name="command line")
        self.stdout.write(f"agent {agent.name} created with id {agent.pk}")
        self.stdout.write(f"snapshot API token (shown once): {token}")
