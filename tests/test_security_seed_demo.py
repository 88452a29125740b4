"""seed_demo on a database that is not only the demo's (security walkthrough,
defect 1): an agent it moves to another host does not take its API key along,
and a login of a demo name that seed_demo did not create is never changed."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from scoring.client import InferenceClient
from scoring.models import Activity, Agent

OLD_HOST = "http://old-host:8000/v1"


def seed(*args):
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


def authorization(agent):
    with InferenceClient.for_agent(agent) as client:
        return client.http.headers.get("Authorization")


@pytest.mark.django_db
def test_it_does_not_send_the_stored_key_to_a_new_host(agent, ref, monkeypatch):
    monkeypatch.setenv("MEMSCORE_AGENT_KEY_POC", "sk-old-env")
    Agent.objects.filter(pk=agent.pk).update(base_url=OLD_HOST, api_key="sk-old-host",
                                             api_key_env="MEMSCORE_AGENT_KEY_POC")

    lines = seed("--base-url", ref.base_url)

    agent.refresh_from_db()
    assert agent.base_url == ref.base_url
    assert (agent.api_key, agent.api_key_env) == ("", "")
    assert authorization(agent) is None
    assert ("agent poc moved to another host, so its stored API key was removed and it no longer reads "
            "its key from the environment ($MEMSCORE_AGENT_KEY_POC): enter the key for the new server "
            "on the agent's page if it needs one") in lines
    removed = Activity.objects.get(verb="removed API key")
    assert (removed.actor_name, removed.target_id) == ("seed_demo", str(agent.pk))


@pytest.mark.django_db
def test_a_key_follows_a_change_of_path_on_the_same_server(agent, ref):
    # The agent form's rule: same scheme, host and port is the same server.
    Agent.objects.filter(pk=agent.pk).update(base_url=ref.base_url.removesuffix("/v1"), api_key="sk-same")

    lines = seed("--base-url", ref.base_url)

    agent.refresh_from_db()
    assert agent.api_key == "sk-same" and authorization(agent) == "Bearer sk-same"
    assert not any("moved to another host" in line for line in lines)
    assert not Activity.objects.filter(verb="removed API key").exists()


@pytest.mark.django_db
def test_it_leaves_a_login_it_did_not_create_as_it_is(agent, ref):
    # A team's own demo and alice, on their database: passwords, roles and status are theirs.
    demo = User.objects.create_user("demo", email="demo@team.example.org", password="demos-own-pw")
    alice = User.objects.create_user("alice", password="alices-own-pw")

    lines = seed("--base-url", ref.base_url)

    demo.refresh_from_db()
    alice.refresh_from_db()
    assert demo.check_password("demos-own-pw") and alice.check_password("alices-own-pw")
    assert not (demo.is_superuser or demo.is_staff or demo.groups.exists() or alice.groups.exists())
    assert (demo.email, alice.email) == ("demo@team.example.org", "")
    for name in ("demo", "alice"):
        assert (f"existing user {name} was not created by seed_demo: left as it is "
                "(password, roles and superuser status not changed)") in lines
    assert "reviewers: bob; not demo logins, the password given does not open them: demo, alice" in lines
    assert User.objects.get(username="bob").check_password("memscore-demo")


@pytest.mark.django_db
def test_a_second_run_resets_the_logins_it_created(agent, ref):
    seed("--base-url", ref.base_url)
    demo = User.objects.get(username="demo")
    demo.set_password("changed-since-1")
    demo.save()

    lines = seed("--base-url", ref.base_url)

    demo.refresh_from_db()
    assert demo.check_password("memscore-demo") and demo.is_superuser
    assert "existing demo user demo: password reset" in lines
    assert "demo login: demo (operator, superuser); reviewers: alice, bob" in lines
