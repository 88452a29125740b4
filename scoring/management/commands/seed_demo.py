"""`manage.py seed_demo --base-url URL`: the demo's logins, agent and snapshot,
safe to run again. All of it or nothing: a bad URL or password, a bad file or
a server that cannot tokenize the snapshot changes nothing.

It may run on a team's own database (DATABASE_URL): a user it did not create
is never changed, however it is named, and an agent it moves to another host
does not take its API key along."""

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
from scoring.models import Activity, Agent, Snapshot
from scoring.models.agents import same_server

from . import _cli

DEMO_SNAPSHOT = Path(__file__).resolve().parents[2] / "demo" / "poc_snapshot.json"
DEMO_AGENT = "poc"
DEMO_MODEL = "memscore-ref"
REVIEWERS = ["alice", "bob"]
# What the help shows: the path from the repository's root.
SHOWN = Path("scoring", "demo")
# How seed_demo knows the logins it created, to reset them on the next run and
# never touch a person's own login of the same name: it gives them this address
# (example.com is reserved for examples, RFC 2606: no one's real address), as it
# always has.
DEMO_EMAIL = "{}@example.com"


def created_by_seed_demo(user):
    return user.email == DEMO_EMAIL.format(user.username)


class Command(_cli.Command):
    help = (
        "Set up the demo: an operator login, reviewers alice and bob, the agent 'poc' on the "
        "given inference server, and its hand-written snapshot. Safe to run again, and it says "
        "what it changes: logins it created before get the password given (theirs is reset), a "
        "login of the same name it did not create is left as it is, an agent that exists gets "
        "this server, model and training context (moved to another host, it loses its API key). "
        "On any error nothing changes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base-url", required=True, help="The inference server, e.g. http://127.0.0.1:8765/v1")
        parser.add_argument("--username", default="demo",
                            help="The operator's login, a superuser [demo]; one that seed_demo created "
                            "before gets the password given, one it did not is left as it is")
        parser.add_argument("--password", default="memscore-demo",
                            help="The password of the operator and of alice and bob [memscore-demo]; those "
                            "that seed_demo created before have theirs reset to it")
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
            # Against the operator login it creates: the similarity rule compares its name and address.
            validate_password(password, User(username=username, email=DEMO_EMAIL.format(username)))
        except ValidationError as e:
            raise CommandError(f"--password: {' '.join(e.messages)}") from None
        agent, notes, key_removed = self._agent(data.get("agent") or DEMO_AGENT, base_url, training_context)

        # The import asks the server to tokenize the snapshot: in the same
        # transaction, so a server that cannot leaves no logins or agent behind.
        with transaction.atomic():
            demo = self._user(username, password, roles.OPERATOR, notes, superuser=True)
            reviewers = [self._user(name, password, roles.REVIEWER, notes) for name in REVIEWERS]
            if agent.pk is None:
                agent.created_by = demo
            agent.save()
            if key_removed:
                Activity.record(None, "removed API key", agent, actor_name="seed_demo",
                                reason="moved to another host")
            try:
                snapshot, imported = self._demo_snapshot(agent, demo, data, taken_at)
            except SnapshotError as e:
                raise CommandError("the demo snapshot is invalid, nothing changed:\n" + "\n".join(e.errors)) from None
            except TokenizeError as e:
                raise CommandError(f"could not import the demo snapshot, nothing changed: {e}") from None

        for note in notes:
            self.stdout.write(note)
        self.stdout.write(_logins_line(demo, reviewers))
        self.stdout.write(
            f"agent {agent.name} (id {agent.pk}) -> {agent.base_url} model {agent.model}\n"
            f"snapshot {snapshot.pk} {imported}: {_cli.plural(snapshot.node_count, 'node')}, "
            f"{_cli.plural(snapshot.memory_count, 'memory', 'memories')}, "
            f"{_cli.plural(snapshot.response_count, 'response')}, {_cli.plural(snapshot.token_count, 'token')}"
        )

    def _agent(self, name, base_url, training_context):
        """The demo's agent with the fields given, validated and not saved yet;
        what it changes in one that exists; whether its API key was removed."""
        agent = Agent.objects.filter(name=name).first()
        notes, key_removed = [], False
        if agent is None:
            agent = Agent(name=name)
        else:
            wanted = {"base_url": base_url, "model": DEMO_MODEL, "training_context": training_context}
            changed = [f"{field} {getattr(agent, field)} -> {value}" for field, value in wanted.items()
                       if getattr(agent, field) != value]
            if changed:
                notes.append(f"updated existing agent {name}: {'; '.join(changed)}")
            if not same_server(agent.base_url, base_url):
                key_removed = self._drop_key(agent, notes)
        agent.base_url, agent.model, agent.training_context = base_url, DEMO_MODEL, training_context
        try:
            agent.full_clean(exclude=["created_by"])
        except ValidationError as e:
            problems = "; ".join(
                f"{'--base-url' if field == 'base_url' else field}: {' '.join(msgs)}"
                for field, msgs in e.message_dict.items()
            )
            raise CommandError(f"invalid agent, nothing changed: {problems}") from None
        return agent, notes, key_removed

    def _drop_key(self, agent, notes):
        """Agent.drop_keys_for_new_host, as the agent form and admin apply it
        (seed_demo never gives a key for the new host)."""
        dropped = agent.drop_keys_for_new_host()
        if any(dropped):
            notes.append(f"agent {agent.name} moved to another host, so {agent.moved_keys_message(*dropped)}: "
                         "enter the key for the new server on the agent's page if it needs one")
        return any(dropped)

    def _demo_snapshot(self, agent, by, data, taken_at):
        """The demo's own snapshot, known by when it was taken (the agent may
        have received newer ones since), imported if missing; (snapshot, word)."""
        snapshot = agent.snapshots.filter(taken_at=taken_at).order_by("id").first()
        if snapshot is not None:
            return snapshot, "already there"
        return import_snapshot(agent, data, by=by, source=Snapshot.Source.CLI), "imported"

    def _user(self, username, password, role, notes, superuser=False):
        """The login, created with the password and role; one seed_demo created
        before gets them again (a second `make demo` resets the demo's
        passwords); one it did not create is left exactly as it is."""
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, email=DEMO_EMAIL.format(username))
        elif not created_by_seed_demo(user):
            notes.append(f"existing user {username} was not created by seed_demo: left as it is "
                         f"(password, roles and superuser status not changed)")
            return user
        else:
            changes = ["password reset"]
            if superuser and not user.is_superuser:
                changes.append("made a superuser")
            if not user.groups.filter(name=role).exists():
                changes.append(f"added to {role}")
            notes.append(f"existing demo user {username}: {', '.join(changes)}")
        user.set_password(password)
        user.is_staff = user.is_staff or superuser
        user.is_superuser = user.is_superuser or superuser
        user.save()
        user.groups.add(Group.objects.get(name=role))
        return user


def _logins_line(demo, reviewers):
    """Which logins the password given opens, and which it does not."""
    said = []
    if created_by_seed_demo(demo):
        said.append(f"demo login: {demo.username} (operator, superuser)")
    seeded = [user.username for user in reviewers if created_by_seed_demo(user)]
    if seeded:
        said.append(f"reviewers: {', '.join(seeded)}")
    kept = [user.username for user in [demo, *reviewers] if not created_by_seed_demo(user)]
    if kept:
        said.append(f"not demo logins, the password given does not open them: {', '.join(kept)}")
    return "; ".join(said)
