"""The agent API's OpenAPI schema: served without login, valid, and schemathesis
finds no generated input (valid or not, with a good token or none) that the
API answers with a 500 or with an answer the schema does not describe."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scoring.views.api_schema import openapi_schema

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Bounded so the file runs in seconds: each example is one import attempt.
EXAMPLES = 40

schema = schemathesis.openapi.from_dict(openapi_schema())
schema.app = get_wsgi_application()
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


def test_the_schema_is_served_without_login_at_a_stable_url(db):
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    served = response.json()
    assert served["openapi"].startswith("3.")
    assert set(served["paths"]["/api/v1/snapshots"]["post"]["responses"]) == {
        "200", "201", "400", "401", "405", "411", "413", "502"
    }
    # As a real client meets it (the CSRF check on): the API's JSON 405, not the HTML 403.
    refused = Client(enforce_csrf_checks=True).post("/api/v1/openapi.json")
    assert (refused.status_code, refused["Allow"], refused.json()) == (405, "GET, HEAD", {"error": "use GET"})


@pytest.fixture
def agent_token(agent):
    # Schemathesis calls the WSGI app itself, whose request signals would close
    # the test's database connection (Django's test Client disconnects them too).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield agent, agent.issue_ingest_token()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_snapshot_is_a_server_error(case, agent_token):
    agent, token = agent_token
    if isinstance(case.body, dict) and isinstance(case.body.get("agent"), str):
        case.body["agent"] = agent.name  # past the name check, into the import itself
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_without_a_good_token_is_a_server_error(case, agent_token):
    response = case.call(headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code in (401, 405)  # negative examples may change the method
    case.validate_response(response, checks=CHECKS)
