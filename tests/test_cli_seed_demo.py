"""seed_demo as a user runs it: the URL checked as add_agent checks it, all or
nothing when the server cannot tokenize, a password that is one, and what it
changes in logins and an agent that exist said out loud."""

import io
import socket
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from scoring.models import Activity, Agent, Snapshot

ROOT = Path(__file__).resolve().parent.parent


def seed(*args):
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


def nothing_seeded():
    return not (User.objects.filter(username__in=["demo", "alice", "bob"]).exists() or Agent.objects.exists()
                or Snapshot.objects.exists() or Activity.objects.exists())


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
def test_it_refuses_what_add_agent_refuses_and_changes_nothing():
    with pytest.raises(CommandError) as e:
        seed("--base-url", "notaurl")
    assert str(e.value) == ("invalid agent, nothing changed: --base-url: Enter an http:// or https:// URL "
                            "with a host, e.g. http://gpu-1:8000/v1")
    assert nothing_seeded()


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_retries")
def test_a_server_that_cannot_tokenize_leaves_no_logins_or_agent():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(CommandError, match="could not import the demo snapshot, nothing changed: .*cannot connect"):
        seed("--base-url", url)
    assert nothing_seeded()


@pytest.mark.django_db
@pytest.mark.parametrize("password, words", [
    ("", "--password: give the logins a password (it must not be empty)"),
    ("   ", "--password: give the logins a password (it must not be empty)"),
    ("short", "--password: This password is too short. It must contain at least 8 characters."),
])
def test_a_password_is_needed(password, words):
    with pytest.raises(CommandError) as e:
        seed("--base-url", "http://127.0.0.1:9/v1", "--password", password)
    assert str(e.value) == words
    assert nothing_seeded()


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["bad user!", "", "a/b"])
def test_a_username_no_one_could_log_in_with_is_refused(username):
    with pytest.raises(CommandError, match="^--username: Enter a valid username"):
        seed("--base-url", "http://127.0.0.1:9/v1", "--username", username)
    assert nothing_seeded()


@pytest.mark.django_db
def test_it_says_what_it_changes_in_logins_and_an_agent_that_exist(agent, ref):
    # An alice an earlier seed_demo created (its address says so), her password since changed.
    User.objects.create_user("alice", email="alice@example.com", password="alices-own-pw")
    agent.base_url = "http://old-host:8000/v1"
    agent.save()

    lines = seed("--base-url", ref.base_url, "--password", "pw-demo-123")

    assert "existing demo user alice: password reset, added to reviewer" in lines
    assert f"updated existing agent poc: base_url http://old-host:8000/v1 -> {ref.base_url}" in lines
    assert not any(line.startswith(("existing demo user demo", "existing demo user bob")) for line in lines)
    assert User.objects.get(username="alice").check_password("pw-demo-123")
    snapshot = Snapshot.objects.get()
    assert f"snapshot {snapshot.pk} imported: {snapshot.node_count} nodes, {snapshot.memory_count} memories, " \
           f"{snapshot.response_count} responses, {snapshot.token_count} tokens" in lines

    # Again, the same: the logins are reset again (said so), the agent is as it was (nothing said).
    lines = seed("--base-url", ref.base_url, "--password", "pw-demo-123")
    assert [line for line in lines if line.startswith(("existing", "updated"))] == [
        "existing demo user demo: password reset", "existing demo user alice: password reset",
        "existing demo user bob: password reset",
    ]


def test_its_help_says_so_and_names_files_that_exist():
    text = load_command_class("scoring", "seed_demo").create_parser("manage.py", "seed_demo").format_help()
    text = " ".join(text.split())
    assert "logins it created before get the password given (theirs is reset)" in text
    assert "a login of the same name it did not create is left as it is" in text
    assert "an agent that exists gets this server, model and training context" in text
    assert "--username USERNAME The operator's login, a superuser [demo]" in text
    assert "--password PASSWORD The password of the operator and of alice and bob [memscore-demo]" in text
    for name in ("poc_snapshot.json", "smollm2_snapshot.json"):
        shown = f"scoring/demo/{name}"
        assert shown in text and (ROOT / shown).is_file()
