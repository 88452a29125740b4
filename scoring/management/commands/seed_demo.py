"""`manage.py seed_demo --base-url URL`: the demo's logins, agent and snapshot,
safe to run again."""

from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from scoring import roles
from scoring.importing import (
    SnapshotError,
    TokenizeError,
    import_snapshot,
    parse_snapshot_json,
    validate_snapshot,
)
from scoring.models import Agent, Snapshot

DEMO_SNAPSHOT = Path(__file__).resolve().parents[2] / "demo" / "poc_snapshot.json"
DEMO_AGENT = "poc"
DEMO_MODEL = "memscore-ref"
REVIEWERS = ["alice", "bob"]


class Command(BaseCommand):
    help = (
        "Set up the demo: an operator login, reviewers alice and bob, the agent 'poc' on the "
        "given inference server, and its hand-written snapshot. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base-url", required=True, help="The inference server, e.g. http://127.0.0.1:8765/v1")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="memscore-demo")
        parser.add_argument("--snapshot", type=Path, default=DEMO_SNAPSHOT,
                            help="The demo's snapshot (its 'agent' names the agent seeded); "
                            "make demo MODEL=smollm2 gives demo/smollm2_snapshot.json")
        parser.add_argument("--training-context", choices=Agent.TrainingContext.values,
                            default=Agent.TrainingContext.AS_SCORED,
                            help="The agent's samples' context (the real-model demo trains without memories, "
                            "so its re-score shows the gap closing)")

    def handle(self, *args, base_url, username, password, snapshot, training_context, **options):
        try:
            data = parse_snapshot_json(snapshot.read_bytes())
            # Checked before anything is created: a bad file changes nothing.
            taken_at = validate_snapshot(data)["taken_at"]
        except OSError as e:
            raise CommandError(f"cannot read {snapshot}: {e}") from None
        except SnapshotError as e:
            raise CommandError("the demo snapshot is invalid:\n" + "\n".join(e.errors)) from None
        with transaction.atomic():
            demo = self._user(username, password, roles.OPERATOR, superuser=True)
            for name in REVIEWERS:
                self._user(name, password, roles.REVIEWER)
            agent, created = Agent.objects.update_or_create(
                name=data.get("agent") or DEMO_AGENT,
                defaults={"base_url": base_url, "model": DEMO_MODEL, "training_context": training_context},
            )
            if created:
                agent.created_by = demo
                agent.save(update_fields=["created_by"])

        try:
            snapshot, imported = self._demo_snapshot(agent, demo, data, taken_at)
        except SnapshotError as e:
            raise CommandError("the demo snapshot is invalid:\n" + "\n".join(e.errors)) from None
        except TokenizeError as e:
            raise CommandError(f"could not import the demo snapshot: {e}") from None

        self.stdout.write(
            f"demo login: {username} (operator, superuser); reviewers: {', '.join(REVIEWERS)}\n"
            f"agent {agent.name} (id {agent.pk}) -> {agent.base_url} model {agent.model}\n"
            f"snapshot {snapshot.pk} {imported}: {snapshot.node_count} nodes, "
            f"{snapshot.memory_count} memories, {snapshot.response_count} responses, "
            f"{snapshot.token_count} tokens"
        )

    def _demo_snapshot(self, agent, by, data, taken_at):
        """The demo's own snapshot, known by when it was taken (the agent may
        have received newer ones since), imported if missing; (snapshot, word)."""
        snapshot = agent.snapshots.filter(taken_at=taken_at).order_by("id").first()
        if snapshot is not None:
            return snapshot, "already there"
        return import_snapshot(agent, data, by=by, source=Snapshot.Source.CLI), "imported"

    def _user(self, username, password, role, superuser=False):
        user, _ = User.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = user.is_staff or superuser
        user.is_superuser = user.is_superuser or superuser
        user.email = user.email or f"{username}@example.com"
        user.save()
        user.groups.add(Group.objects.get(name=role))
        return user
