"""`manage.py seed_demo --base-url URL`: the demo's logins, agent and snapshot,
safe to run again. All of it or nothing: a bad URL or password, a bad file or
a server that cannot tokenize the snapshot changes nothing."""

from pathlib import Path

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
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

from . import _cli

DEMO_SNAPSHOT = Path(__file__).resolve().parents[2] / "demo" / "poc_snapshot.json"
DEMO_AGENT = "poc"
DEMO_MODEL = "memscore-ref"
REVIEWERS = ["alice", "bob"]
# What the help shows: the path from the repository's root.
SHOWN = Path("scoring", "demo")


class Command(_cli.Command):
    help = (
        "Set up the demo: an operator login, reviewers alice and bob, the agent 'poc' on the "
        "given inference server, and its hand-written snapshot. Safe to run again, and it says "
        "what it changes: logins that exist get the password given (theirs is reset), an agent "
        "that exists gets this server, model and training context. On any error nothing changes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base-url", required=True, help="The inference server, e.g. http://127.0.0.1:8765/v1")
        parser.add_argument("--username", default="demo",
                            help="The operator's login, a superuser [demo]; a user of this name that exists "
                            "gets the password given")
        parser.add_argument("--password", default="memscore-demo",
                            help="The password of the operator and of alice and bob [memscore-demo]; those "
                            "that exist have theirs reset to it")
        parser.add_argument("--snapshot", type=Path, default=DEMO_SNAPSHOT,
                            help=f"The demo's snapshot (its 'agent' names the agent seeded) "
                            f"[{SHOWN / DEMO_SNAPSHOT.name}]; make demo MODEL=smollm2 gives "
                            f"{SHOWN / 'smollm2_snapshot.json'}")
        parser.add_argument("--training-context", choices=Agent.TrainingContext.values,
                            default=Agent.TrainingContext.AS_SCORED,
                            help="The agent's samples' context (the real-model demo trains without memories, "
                            "so its re-score shows the gap closing)")

    def handle(self, *args, base_url, username, password, snapshot, training_context, **options):
        # Everything that can be checked before anything is written: a bad file,
        # password or URL changes nothing.
        try:
            data = parse_snapshot_json(snapshot.read_bytes())
            taken_at = validate_snapshot(data)["taken_at"]
        except OSError as e:
            raise CommandError(f"cannot read {snapshot}: {e}") from None
        except SnapshotError as e:
            raise CommandError("the demo snapshot is invalid:\n" + "\n".join(e.errors)) from None
        try:
            # The rules the admin's and Django's own user forms apply: a name
            # created here must be one a person can type at the login page.
            User.username_validator(username)
        except ValidationError as e:
            raise CommandError(f"--username: {' '.join(e.messages)}") from None
        if not password.strip():
            raise CommandError("--password: give the logins a password (it must not be empty)")
        try:
            validate_password(password)
        except ValidationError as e:
            raise CommandError(f"--password: {' '.join(e.messages)}") from None
        agent, notes = self._agent(data.get("agent") or DEMO_AGENT, base_url, training_context)

        # The import asks the server to tokenize the snapshot: in the same
        # transaction, so a server that cannot leaves no logins or agent behind.
        with transaction.atomic():
            demo = self._user(username, password, roles.OPERATOR, notes, superuser=True)
            for name in REVIEWERS:
                self._user(name, password, roles.REVIEWER, notes)
            if agent.pk is None:
                agent.created_by = demo
            agent.save()
            try:
                snapshot, imported = self._demo_snapshot(agent, demo, data, taken_at)
            except SnapshotError as e:
                raise CommandError("the demo snapshot is invalid, nothing changed:\n" + "\n".join(e.errors)) from None
            except TokenizeError as e:
                raise CommandError(f"could not import the demo snapshot, nothing changed: {e}") from None

        for note in notes:
            self.stdout.write(note)
        self.stdout.write(
            f"demo login: {username} (operator, superuser); reviewers: {', '.join(REVIEWERS)}\n"
            f"agent {agent.name} (id {agent.pk}) -> {agent.base_url} model {agent.model}\n"
            f"snapshot {snapshot.pk} {imported}: {_cli.plural(snapshot.node_count, 'node')}, "
            f"{_cli.plural(snapshot.memory_count, 'memory', 'memories')}, "
            f"{_cli.plural(snapshot.response_count, 'response')}, {_cli.plural(snapshot.token_count, 'token')}"
        )

    def _agent(self, name, base_url, training_context):
        """The demo's agent with the fields given, validated and not saved yet;
        and what it changes in one that exists."""
        agent = Agent.objects.filter(name=name).first()
        notes = []
        if agent is None:
            agent = Agent(name=name)
        else:
            wanted = {"base_url": base_url, "model": DEMO_MODEL, "training_context": training_context}
            changed = [f"{field} {getattr(agent, field)} -> {value}" for field, value in wanted.items()
                       if getattr(agent, field) != value]
            if changed:
                notes.append(f"updated existing agent {name}: {'; '.join(changed)}")
        agent.base_url, agent.model, agent.training_context = base_url, DEMO_MODEL, training_context
        try:
            agent.full_clean(exclude=["created_by"])
        except ValidationError as e:
            problems = "; ".join(
                f"{'--base-url' if field == 'base_url' else field}: {' '.join(msgs)}"
                for field, msgs in e.message_dict.items()
            )
            raise CommandError(f"invalid agent, nothing changed: {problems}") from None
        return agent, notes

    def _demo_snapshot(self, agent, by, data, taken_at):
        """The demo's own snapshot, known by when it was taken (the agent may
        have received newer ones since), imported if missing; (snapshot, word)."""
        snapshot = agent.snapshots.filter(taken_at=taken_at).order_by("id").first()
        if snapshot is not None:
            return snapshot, "already there"
        return import_snapshot(agent, data, by=by, source=Snapshot.Source.CLI), "imported"

    def _user(self, username, password, role, notes, superuser=False):
        user, created = User.objects.get_or_create(username=username)
        group = Group.objects.get(name=role)
        if not created:
            changes = ["password reset"]
            if superuser and not user.is_superuser:
                changes.append("made a superuser")
            if not user.groups.filter(pk=group.pk).exists():
                changes.append(f"added to {role}")
            notes.append(f"existing user {username}: {', '.join(changes)}")
        user.set_password(password)
        user.is_staff = user.is_staff or superuser
        user.is_superuser = user.is_superuser or superuser
        user.email = user.email or f"{username}@example.com"
        user.save()
        user.groups.add(group)
        return user
