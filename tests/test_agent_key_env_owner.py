"""An environment-held API key reaches only the host its owner meant (security
walkthrough, MEDIUM): an operator could create an agent, or edit one twice,
with their own server as base URL and another agent's variable
(MEMSCORE_AGENT_KEY_PROD) as api_key_env, then "Check connection" sent the
prod key to them. Only a superuser names the variable now (web form and
admin; the command line runs with the environment in hand), and an edit that
moves an agent to another host drops the variable as it drops a stored key."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from scoring.models import Activity, Agent
from tests.conftest import recording_server
from tests.test_agent_settings_safety import _authorization
from tests.test_views_agents import _valid_post

PROD_VAR = "MEMSCORE_AGENT_KEY_PROD"
PROD_KEY = "sk-prod-only-for-gpu-prod-8812"


@pytest.fixture
def prod(db, monkeypatch):
    monkeypatch.setenv(PROD_VAR, PROD_KEY)
    return Agent.objects.create(name="prod", base_url="http://gpu-prod.internal:8000/v1", model="m",
                                api_key_env=PROD_VAR)


@pytest.fixture
def root(db):
    user = User.objects.create_superuser("root", "root@example.com", "pw-for-tests-123")
    client = Client()
    client.force_login(user)
    return client


def _models_list(handler):
    body = b'{"object": "list", "data": [{"id": "m"}]}'
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def listener():
    """A server of the attacker's: (its /v1 URL, [(path, Authorization header)] of what it got)."""
    with recording_server(_models_list) as (root, seen):
        yield f"{root}/v1", seen


def _check(client, agent):
    return client.post(reverse("agent_check", args=[agent.pk]))


# --- an operator cannot name a variable -----------------------------------------

def test_an_operator_cannot_create_an_agent_reading_another_agents_variable(cast, prod, listener):
    url, seen = listener
    client = cast.client_for(cast.operator)

    response = client.post(reverse("agent_create"), _valid_post(name="mine", base_url=url, api_key_env=PROD_VAR))

    assert response.status_code == 200
    assert "Only a superuser" in response.context["form"].errors["api_key_env"][0]
    assert not Agent.objects.filter(name="mine").exists()


def test_an_operator_cannot_point_an_agent_at_a_variable_in_two_edits(cast, prod, listener):
    url, seen = listener
    mine = Agent.objects.create(name="mine", base_url="http://gpu-1.example.net:8000/v1", model="m")
    client = cast.client_for(cast.operator)
    edit = reverse("agent_edit", args=[mine.pk])

    # First the host (no key to drop), then the variable on the same host.
    assert client.post(edit, _valid_post(name="mine", base_url=url)).status_code == 302
    response = client.post(edit, _valid_post(name="mine", base_url=url, api_key_env=PROD_VAR))

    assert response.status_code == 200
    assert "Only a superuser" in response.context["form"].errors["api_key_env"][0]
    mine.refresh_from_db()
    assert mine.api_key_env == ""
    _check(client, mine)
    assert seen and PROD_KEY not in str(seen)


def test_an_operator_moving_an_agent_drops_its_variable_even_with_a_new_key(cast, prod, listener):
    url, seen = listener
    client = cast.client_for(cast.operator)
    edit = reverse("agent_edit", args=[prod.pk])

    # The browser does not send the read-only field; a script may send it unchanged.
    response = client.post(edit, _valid_post(name="prod", base_url=url, api_key="sk-for-my-server",
                                             api_key_env=PROD_VAR), follow=True)

    prod.refresh_from_db()
    assert (prod.base_url, prod.api_key_env, prod.api_key) == (url, "", "sk-for-my-server")
    assert "no longer reads its key from the environment" in response.content.decode()
    assert "api_key_env" in Activity.objects.get(verb="changed agent").detail["fields"]
    _check(client, prod)
    assert seen and {auth for _, auth in seen} == {"Bearer sk-for-my-server"}

    # Moving it again (and back) never brings the variable back.
    client.post(edit, _valid_post(name="prod", base_url="http://gpu-prod.internal:8000/v1"))
    prod.refresh_from_db()
    assert prod.api_key_env == "" and _authorization(prod) is None


def test_an_operator_keeps_the_variable_on_the_same_host(cast, prod):
    client = cast.client_for(cast.operator)
    # The same server written as its root: not a move.
    client.post(reverse("agent_edit", args=[prod.pk]),
                _valid_post(name="prod", base_url="http://gpu-prod.internal:8000", model="m2"))

    prod.refresh_from_db()
    assert (prod.model, prod.api_key_env) == ("m2", PROD_VAR)
    assert _authorization(prod) == f"Bearer {PROD_KEY}"


def test_the_operators_form_shows_the_variable_read_only_and_says_why(cast, prod):
    client = cast.client_for(cast.operator)

    edit = client.get(reverse("agent_edit", args=[prod.pk]))
    field = edit.context["form"]["api_key_env"]
    assert field.field.disabled and field.value() == PROD_VAR
    assert "Only a superuser" in field.help_text
    assert "from the environment" in edit.context["form"]["base_url"].help_text

    new = client.get(reverse("agent_create")).context["form"]
    assert new["api_key_env"].field.disabled and "Only a superuser" in new["api_key_env"].help_text


# --- a superuser can, in the web form and the admin ---------------------------------

def test_a_superuser_names_a_variable_in_the_web_form(root, monkeypatch):
    monkeypatch.setenv("MEMSCORE_AGENT_KEY_HELPER", "sk-helper")
    form = root.get(reverse("agent_create")).context["form"]
    assert not form["api_key_env"].field.disabled

    assert root.post(reverse("agent_create"),
                     _valid_post(api_key_env="MEMSCORE_AGENT_KEY_HELPER")).status_code == 302
    assert _authorization(Agent.objects.get(name="helper")) == "Bearer sk-helper"


def test_a_superusers_move_keeps_the_variable_only_when_the_edit_names_it(root, prod):
    edit = reverse("agent_edit", args=[prod.pk])

    # Named again in the moving edit: the superuser says it is the new host's key.
    root.post(edit, _valid_post(name="prod", base_url="http://gpu-2.internal:8000/v1",
                                api_key_env="MEMSCORE_AGENT_KEY_GPU2"))
    prod.refresh_from_db()
    assert prod.api_key_env == "MEMSCORE_AGENT_KEY_GPU2"

    # Left as it was: it belongs to the old host and is dropped.
    root.post(edit, _valid_post(name="prod", base_url="http://gpu-3.internal:8000/v1",
                                api_key_env="MEMSCORE_AGENT_KEY_GPU2"))
    prod.refresh_from_db()
    assert prod.api_key_env == ""


def _admin_form(agent, **changes):
    from tests.test_admin import _agent_form

    return _agent_form(agent, **changes)


def test_the_admin_lets_only_a_superuser_name_a_variable(root, prod, monkeypatch):
    staff_operator = User.objects.create_user("ops", password="pw-for-tests-123", is_staff=True)
    from tests.conftest import ensure_role_groups

    ensure_role_groups()
    staff_operator.groups.add(Group.objects.get(name="operator"))
    staff = Client()
    staff.force_login(staff_operator)
    mine = Agent.objects.create(name="mine", base_url="http://gpu-1.example.net:8000/v1", model="m")
    url = reverse("admin:scoring_agent_change", args=[mine.pk])

    response = staff.post(url, _admin_form(mine, api_key_env=PROD_VAR))
    assert response.status_code == 200 and "Only a superuser" in response.text
    mine.refresh_from_db()
    assert mine.api_key_env == ""

    assert root.post(url, _admin_form(mine, api_key_env=PROD_VAR)).status_code == 302
    mine.refresh_from_db()
    assert mine.api_key_env == PROD_VAR

    # The staff operator moving it drops the variable, as in the web form.
    assert staff.post(url, _admin_form(mine, base_url="http://elsewhere.example/v1",
                                       api_key_env=PROD_VAR)).status_code == 302
    mine.refresh_from_db()
    assert mine.api_key_env == ""


# --- who sees the variable's name --------------------------------------------------

def test_only_those_who_change_agents_see_the_variables_name(cast, prod):
    viewer = cast.client_for(cast.viewer).get(reverse("agent_detail", args=[prod.pk])).content.decode()
    assert PROD_VAR not in viewer and "from the environment" in viewer

    operator = cast.client_for(cast.operator).get(reverse("agent_detail", args=[prod.pk])).content.decode()
    assert f"${PROD_VAR}" in operator
