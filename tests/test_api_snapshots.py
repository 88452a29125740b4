"""POST /api/v1/snapshots: token auth, status codes, and nothing imported on error."""

import pytest
from django.test import Client

from scoring.models import Activity, Agent, Memory, Node, Snapshot
from tests.snapshot_data import BAD_CASES, MEMORY_KEYS, NODES, RESPONSES, as_bytes, snapshot_doc

URL = "/api/v1/snapshots"


def _counts():
    return (Snapshot.objects.count(), Node.objects.count(), Memory.objects.count())


@pytest.fixture
def api():
    # Agents have no session: CSRF checks stay on to prove the API does not need them.
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def token(agent):
    return agent.issue_ingest_token()


def _post(api, body, token=None, content_type="application/json"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return api.post(URL, body, content_type=content_type, **headers)


def test_it_imports_a_snapshot_and_answers_201(api, agent, token):
    response = _post(api, as_bytes(snapshot_doc()), token)
    assert response.status_code == 201, response.content
    body = response.json()
    snapshot = Snapshot.objects.get()
    assert body == {
        "id": snapshot.pk,
        "url": f"http://testserver/snapshots/{snapshot.pk}/",
        "nodes": NODES,
        "memories": MEMORY_KEYS,
        "responses": RESPONSES,
        "tokens": snapshot.token_count,
    }
    assert snapshot.agent == agent and snapshot.source == Snapshot.Source.API
    assert snapshot.token_count > NODES  # ids came from the server
    activity = Activity.objects.get()
    assert activity.actor is None and activity.actor_name == "agent:poc"


def test_it_uses_supplied_token_ids(api, agent, token):
    response = _post(api, as_bytes(snapshot_doc(token_ids=True)), token)
    assert response.status_code == 201
    assert response.json()["tokens"] == 7 * NODES


def test_it_refuses_a_missing_token(api, agent, token):
    response = _post(api, as_bytes(snapshot_doc(token_ids=True)))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert _counts() == (0, 0, 0)


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
def test_it_refuses_a_wrong_token(api, agent, token, header):
    response = api.post(URL, as_bytes(snapshot_doc(token_ids=True)), content_type="application/json",
                        HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert token not in response.content.decode()
    assert _counts() == (0, 0, 0)


def test_it_refuses_the_token_of_another_agent(api, agent, token):
    other = Agent.objects.create(name="other", base_url=agent.base_url, model=agent.model)
    other_token = other.issue_ingest_token()
    response = _post(api, as_bytes(snapshot_doc(token_ids=True)), other_token)
    assert response.status_code == 401
    assert _counts() == (0, 0, 0)


def test_it_refuses_an_agent_that_has_no_token_yet(api, agent):
    response = _post(api, as_bytes(snapshot_doc(token_ids=True)), "anything")
    assert response.status_code == 401


def test_it_refuses_a_replaced_token(api, agent, token):
    agent.issue_ingest_token()
    assert _post(api, as_bytes(snapshot_doc(token_ids=True)), token).status_code == 401


def test_it_answers_404_for_an_unknown_agent(api, agent, token):
    response = _post(api, as_bytes(snapshot_doc("ghost", token_ids=True)), token)
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"error"} and "ghost" in body["error"]
    assert agent.ingest_token_hash not in response.content.decode()
    assert _counts() == (0, 0, 0)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_it_answers_405_to_other_methods(api, agent, token, method):
    response = getattr(api, method)(URL, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_it_answers_400_to_bad_json(api, agent, token):
    response = _post(api, b'{"agent": "poc", "conversation": [', token)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid snapshot"
    assert body["errors"][0].startswith("snapshot: not valid JSON")


def test_it_answers_400_with_every_error_when_there_is_no_agent_name(api, agent, token):
    doc = snapshot_doc(token_ids=True)
    del doc["agent"]
    doc["taken_at"] = "later"
    response = _post(api, as_bytes(doc), token)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "agent: required (the agent's name)", "taken_at: not an ISO 8601 date-time"
    ]


@pytest.mark.parametrize("case_id, mutate, message", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_it_answers_400_naming_the_field_and_imports_nothing(api, agent, token, case_id, mutate, message):
    doc = snapshot_doc(token_ids=True)
    mutate(doc)
    response = _post(api, as_bytes(doc), token)
    if case_id == "agent-mismatch":
        # The body names another agent: there is none of that name.
        assert response.status_code == 404
    else:
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["error"] == "invalid snapshot"
        assert any(e.startswith(message) for e in body["errors"]), body["errors"]
    assert _counts() == (0, 0, 0)
    assert not Activity.objects.exists()


def test_it_answers_502_when_the_server_cannot_tokenize(api, agent, token):
    agent.base_url = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    agent.save()
    response = _post(api, as_bytes(snapshot_doc()), token)
    assert response.status_code == 502
    assert "cannot connect" in response.json()["error"]
    assert _counts() == (0, 0, 0)


def test_it_answers_502_when_the_server_fails(api, agent, token, ref):
    ref.control(fail_rate=1.0, fail_endpoints=["tokenize"], fail_mode="error200")
    response = _post(api, as_bytes(snapshot_doc()), token)
    assert response.status_code == 502
    assert set(response.json()) == {"error"}
    assert _counts() == (0, 0, 0)


def test_it_does_not_need_a_session_or_csrf_token(api, agent, token, cast):
    # Even a logged-in browser session changes nothing: the token is what counts.
    api.force_login(cast.operator)
    assert _post(api, as_bytes(snapshot_doc(token_ids=True))).status_code == 401
    assert _post(api, as_bytes(snapshot_doc(token_ids=True)), token).status_code == 201
    assert Activity.objects.get().actor_name == "agent:poc"
