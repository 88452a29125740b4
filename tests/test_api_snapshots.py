"""POST /api/v1/snapshots: token auth, status codes, and nothing imported on error."""

import pytest
from django.test import Client

from scoring.models import Activity, Agent, Memory, Node, Snapshot
from tests.snapshot_data import BAD_CASES, MEMORY_KEYS, NODES, RESPONSES, as_bytes, snapshot_doc
from tests.snapshot_hardening import HARD_CASES

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


def test_the_token_of_another_agent_does_not_import_into_this_one(api, agent, token):
    other = Agent.objects.create(name="other", base_url=agent.base_url, model=agent.model)
    other_token = other.issue_ingest_token()
    response = _post(api, as_bytes(snapshot_doc(token_ids=True)), other_token)
    assert response.status_code == 400
    assert response.json()["errors"] == ["agent: 'poc' does not match the agent 'other' it is imported into"]
    assert _counts() == (0, 0, 0)


def test_the_token_alone_says_which_agent_it_is(api, agent, token):
    other = Agent.objects.create(name="other", base_url=agent.base_url, model=agent.model)
    other_token = other.issue_ingest_token()
    response = _post(api, as_bytes(snapshot_doc("other", token_ids=True)), other_token)
    assert response.status_code == 201
    assert Snapshot.objects.get().agent == other


def test_it_refuses_an_agent_that_has_no_token_yet(api, agent):
    response = _post(api, as_bytes(snapshot_doc(token_ids=True)), "anything")
    assert response.status_code == 401


def test_it_refuses_a_replaced_token(api, agent, token):
    agent.issue_ingest_token()
    assert _post(api, as_bytes(snapshot_doc(token_ids=True)), token).status_code == 401


def test_an_unknown_agent_and_a_wrong_token_get_the_same_401(api, agent, token):
    # Names cannot be enumerated: the token is checked before the body is read.
    known = _post(api, as_bytes(snapshot_doc("poc", token_ids=True)), "bogus")
    unknown = _post(api, as_bytes(snapshot_doc("ghost", token_ids=True)), "bogus")
    assert known.status_code == unknown.status_code == 401
    assert known.content == unknown.content
    assert "ghost" not in unknown.content.decode() and "poc" not in known.content.decode()
    assert _counts() == (0, 0, 0)


def test_a_body_naming_an_unknown_agent_is_a_400_for_a_valid_token(api, agent, token):
    response = _post(api, as_bytes(snapshot_doc("ghost", token_ids=True)), token)
    assert response.status_code == 400
    assert response.json()["errors"] == ["agent: 'ghost' does not match the agent 'poc' it is imported into"]
    assert agent.ingest_token_hash not in response.content.decode()
    assert _counts() == (0, 0, 0)


class _UnreadableBody:
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read before the token was checked")

    readline = read


@pytest.mark.parametrize("header", [None, "Bearer bogus"])
def test_a_bad_token_is_refused_without_reading_the_body(api, agent, token, header):
    extra = {"wsgi.input": _UnreadableBody(), "CONTENT_LENGTH": str(50 * 1024 * 1024),
             "CONTENT_TYPE": "application/json"}
    if header:
        extra["HTTP_AUTHORIZATION"] = header
    response = api.generic("POST", URL, **extra)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


def test_a_body_over_the_limit_is_a_json_413_naming_it(api, agent, token, settings):
    body = as_bytes(snapshot_doc(token_ids=True))
    settings.SNAPSHOT_MAX_BYTES = len(body) - 1
    response = _post(api, body, token)
    assert response.status_code == 413
    assert response.json() == {
        "error": f"the body is larger than the server's limit of {len(body) - 1} bytes "
                 "(SNAPSHOT_MAX_BYTES)",
        "limit": len(body) - 1,
    }
    settings.SNAPSHOT_MAX_BYTES = len(body)
    assert _post(api, body, token).status_code == 201


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


@pytest.mark.parametrize("case_id, build, message", HARD_CASES, ids=[c[0] for c in HARD_CASES])
def test_input_the_database_cannot_hold_is_a_400_naming_the_field(api, agent, token, case_id, build, message):
    response = _post(api, build(), token)
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert any(e.startswith(message) for e in errors), errors
    assert _counts() == (0, 0, 0)


def test_token_ids_outside_the_vocabulary_are_a_400_naming_the_node(api, agent, token):
    doc = snapshot_doc(token_ids=True)
    doc["conversation"][5]["token_ids"] = [99999]
    response = _post(api, as_bytes(doc), token)
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith(
        "conversation[5].token_ids[0]: 99999 is outside the model's vocabulary")


def test_posting_the_same_snapshot_again_answers_200_with_the_first(api, agent, token):
    first = _post(api, as_bytes(snapshot_doc(token_ids=True)), token)
    again = _post(api, as_bytes(snapshot_doc(token_ids=True)), token)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Snapshot.objects.count() == 1
    changed = snapshot_doc(token_ids=True, taken_at="2026-11-20T12:05:00Z")
    assert _post(api, as_bytes(changed), token).status_code == 201


def test_a_token_under_another_scheme_is_told_the_scheme_not_that_it_is_missing(api, agent, token):
    response = api.post(URL, as_bytes(snapshot_doc(token_ids=True)), content_type="application/json",
                        HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error.startswith("the Authorization header's scheme must be Bearer, not 'Token'")
    assert token not in error
    # No header at all is still a missing token.
    assert _post(api, as_bytes(snapshot_doc(token_ids=True))).json()["error"].startswith("missing token")
