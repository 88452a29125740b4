"""Agent settings that could leak a secret or break a page (issue 13, defects 1 and 7):
API keys from the environment only under the allowed prefix, a stored key never
follows the agent to a new host, and settings bounded to what makes sense."""

import pytest
from django.urls import reverse

from scoring.client import InferenceClient
from scoring.models import Agent
from tests.test_views_agents import SECRET, _valid_post

PREFIX = "MEMSCORE_AGENT_KEY_"


@pytest.fixture
def poc(db):
    return Agent.objects.create(
        name="poc", base_url="http://127.0.0.1:8765/v1", model="memscore-ref", api_key=SECRET
    )


def _authorization(agent):
    with InferenceClient.for_agent(agent) as client:
        return client.http.headers.get("Authorization")


@pytest.mark.parametrize("name", ["DATABASE_URL", "SECRET_KEY", "REDIS_URL", "memscore_agent_key_x", "PATH"])
def test_it_refuses_an_environment_variable_outside_the_prefix(admin_client, name):
    # Only a superuser names a variable at all (test_agent_key_env_owner); even then, only under the prefix.
    response = admin_client.post(reverse("agent_create"), _valid_post(api_key_env=name))

    assert response.status_code == 200
    assert PREFIX in response.context["form"].errors["api_key_env"][0]
    assert not Agent.objects.filter(name="helper").exists()


def test_it_refuses_the_prefix_alone(admin_client, monkeypatch):
    # One variable for every agent's key: each agent's key is its own.
    monkeypatch.setenv(PREFIX, "sk-for-everyone")
    response = admin_client.post(reverse("agent_create"), _valid_post(api_key_env=PREFIX))

    assert response.status_code == 200
    assert response.context["form"].errors["api_key_env"] == [
        f"Add the agent's own name after {PREFIX}, e.g. {PREFIX}POC: the prefix alone names no variable."]
    # Nor is it read for a row that names it.
    agent = Agent.objects.create(name="old", base_url="http://127.0.0.1:8765/v1", model="m", api_key_env=PREFIX)
    assert agent.get_api_key() == "" and _authorization(agent) is None


def test_it_reads_a_key_from_an_allowed_variable(admin_client, monkeypatch):
    monkeypatch.setenv(PREFIX + "HELPER", "sk-from-env")
    response = admin_client.post(
        reverse("agent_create"), _valid_post(api_key_env=PREFIX + "HELPER")
    )

    assert response.status_code == 302
    assert _authorization(Agent.objects.get(name="helper")) == "Bearer sk-from-env"


def test_it_never_sends_a_variable_outside_the_prefix_even_if_stored(db, monkeypatch):
    # A row saved before the rule (or by hand) names the database's URL.
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/memscore")
    agent = Agent.objects.create(name="old", base_url="http://evil.example/v1", model="m",
                                 api_key_env="DATABASE_URL")

    assert agent.get_api_key() == ""
    assert _authorization(agent) is None


def test_it_drops_the_stored_key_when_the_host_changes(cast, poc):
    response = cast.client_for(cast.operator).post(
        reverse("agent_edit", args=[poc.pk]),
        _valid_post(name="poc", base_url="http://attacker.example:8000/v1"),
        follow=True,
    )

    poc.refresh_from_db()
    assert poc.base_url == "http://attacker.example:8000/v1"
    assert poc.api_key == "" and _authorization(poc) is None
    assert "API key was removed" in response.content.decode()


def test_it_drops_an_environment_key_when_the_host_changes(cast, monkeypatch):
    monkeypatch.setenv(PREFIX + "POC", "sk-env")
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:8765/v1", model="m",
                                 api_key_env=PREFIX + "POC")
    cast.client_for(cast.operator).post(
        reverse("agent_edit", args=[agent.pk]),
        _valid_post(name="poc", base_url="http://other.example/v1", api_key_env=PREFIX + "POC"),
    )

    agent.refresh_from_db()
    assert agent.api_key_env == "" and _authorization(agent) is None


def test_it_keeps_the_key_on_the_same_host_or_with_a_new_key(cast, poc):
    client = cast.client_for(cast.operator)
    # The same server written as its root instead of its /v1 prefix.
    client.post(reverse("agent_edit", args=[poc.pk]), _valid_post(name="poc", base_url="http://127.0.0.1:8765"))
    poc.refresh_from_db()
    assert poc.api_key == SECRET

    client.post(reverse("agent_edit", args=[poc.pk]),
                _valid_post(name="poc", base_url="http://new.example/v1", api_key="sk-for-new-host"))
    poc.refresh_from_db()
    assert (poc.base_url, poc.api_key) == ("http://new.example/v1", "sk-for-new-host")


@pytest.mark.parametrize("field, template", [
    ("memory_template", "{key}{text:>99999999999}"),
    ("memory_template", "{key}{text!r}"),
    ("message_template", "{role}{text.__class__}"),
    ("message_template", "{0}{text}"),
    ("message_template", "{role[0]}{text}"),
])
def test_it_refuses_template_fields_with_formats_or_lookups(cast, field, template):
    response = cast.client_for(cast.operator).post(reverse("agent_create"), _valid_post(**{field: template}))

    assert response.status_code == 200
    assert "only" in response.context["form"].errors[field][0]
    assert not Agent.objects.filter(name="helper").exists()


@pytest.mark.parametrize("field, value", [
    ("request_timeout", "-5"), ("request_timeout", "0"), ("request_timeout", "1e308"),
    ("finetune_min_divergence", "-3"), ("finetune_min_divergence", "inf"),
    ("finetune_count", "0"), ("incremental_response_window", "0"), ("incremental_batch", "0"),
    ("incremental_max_age", "99999999999999999999"),
])
def test_it_refuses_settings_that_make_no_sense(cast, field, value):
    response = cast.client_for(cast.operator).post(reverse("agent_create"), _valid_post(**{field: value}))

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Agent.objects.filter(name="helper").exists()


def test_the_admin_add_page_opens(db, admin_client):
    assert admin_client.get(reverse("admin:scoring_agent_add")).status_code == 200
