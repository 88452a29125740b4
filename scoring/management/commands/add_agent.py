"""`manage.py add_agent NAME --url URL --model MODEL [--backend vllm|sglang|memscore]`:
an agent and its snapshot-API token, for scripted set-ups."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from scoring.models import Activity, Agent
from scoring.models.agents import Backend, TrainingTarget, default_training_target

from . import _cli

# The agent's fields as this command's options: an error names what was typed.
FLAGS = {
    "name": "NAME", "base_url": "--url", "model": "--model", "backend": "--backend", "priority": "--priority",
    "training_target": "--training-target", "prefix_ids": "--prefix-ids", "end_of_turn": "--end-of-turn",
    "api_key_env": "--api-key-env", "score_concurrency": "--concurrency",
}


class Command(_cli.Command):
    help = "Create an agent and print its id and a new snapshot-API token (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--url", required=True, help="The server's root or /v1 URL, e.g. http://host:8000"
        )
        parser.add_argument("--model", required=True, help="Model name the server serves")
        parser.add_argument(
            "--backend", choices=Backend.values, default=Backend.MEMSCORE,
            help="The server's API: vllm, sglang, or memscore (the /score protocol; default)",
        )
        parser.add_argument(
            "--priority", type=int, default=None,
            help="Scheduling priority for score calls (only for a server that schedules by priority)",
        )
        parser.add_argument(
            "--training-target", choices=TrainingTarget.values, default=None,
            help="train (POST /train) or none (export only); default: none for vllm/sglang, else train",
        )
        parser.add_argument("--prefix-ids", default=None, help="JSON list of ids put before every prompt, e.g. [1]")
        parser.add_argument("--end-of-turn", default=None, help="The end-of-turn token's text, e.g. <|eot_id|>")
        # The web form lets only a superuser name a variable (whoever names it picks the host that
        # gets its key); this command runs with shell access to the environment itself.
        parser.add_argument("--api-key-env", default="", help="Read the server's API key from this variable")
        parser.add_argument("--concurrency", type=int, default=None, help="Score calls in flight per run")

    def handle(self, *args, name, url, model, api_key_env, concurrency, backend, **options):
        if Agent.objects.filter(name=name).exists():
            raise CommandError(f"an agent named {name!r} already exists")
        agent = Agent(name=name, base_url=url, model=model, api_key_env=api_key_env, backend=backend)
        if concurrency is not None:
            agent.score_concurrency = concurrency
        self._apply_options(agent, backend, options)
        try:
            agent.full_clean()
        except ValidationError as e:
            problems = "; ".join(
                f"{FLAGS.get(field, field)}: {' '.join(msgs)}" for field, msgs in e.message_dict.items()
            )
            raise CommandError(f"invalid agent: {problems}") from None
        agent.save()
        token = agent.issue_ingest_token()
        Activity.record(None, "created agent", agent, actor_name="command line")
        self.stdout.write(f"agent {agent.name} created with id {agent.pk}")
        self.stdout.write(f"snapshot API token (shown once): {token}")

    def _apply_options(self, agent, backend, options):
        agent.priority = options["priority"]
        target = options["training_target"]
        if target is None:
            target = default_training_target(backend)
        agent.training_target = target
        if options["prefix_ids"] is not None:
            try:
                agent.prefix_ids = json.loads(options["prefix_ids"])
            except ValueError:
                raise CommandError("--prefix-ids must be a JSON list of ids, e.g. [1]") from None
        if options["end_of_turn"] is not None:
            agent.end_of_turn = options["end_of_turn"]
