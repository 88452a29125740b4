"""Anything under /api/ that is not an endpoint: a JSON 404, never the HTML page
or a CSRF cookie, with a hint where the path is an endpoint's plus a slash."""

import pytest
from django.test import Client

from scoring.models import Snapshot
from tests.snapshot_data import as_bytes, snapshot_doc


@pytest.fixture
def api():
    return Client(enforce_csrf_checks=True)


def _assert_json_404(response):
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "csrftoken" not in response.cookies
    assert not response.has_header("Set-Cookie")
    return response.json() if response.content else None  # HEAD: no body


def test_a_trailing_slash_is_a_json_404_naming_the_path_without_it(api, agent):
    token = agent.issue_ingest_token()
    response = api.post("/api/v1/snapshots/", as_bytes(snapshot_doc(token_ids=True)),
                        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert _assert_json_404(response) == {
        "error": "no such API path: /api/v1/snapshots/",
        "hint": "drop the trailing slash: /api/v1/snapshots",
    }
    assert Snapshot.objects.count() == 0


@pytest.mark.parametrize("method", ["get", "post", "put", "delete", "head"])
@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v2/snapshots", "/api/", "/api", "/api/v1/openapi.json/x"])
def test_an_unknown_api_path_is_a_json_404_without_login(api, db, path, method):
    response = getattr(api, method)(path)
    _assert_json_404(response)
    if method != "head":
        assert response.json() == {"error": f"no such API path: {path}"}


def test_the_schema_with_a_slash_gets_the_hint(api, db):
    body = _assert_json_404(api.get("/api/v1/openapi.json/"))
    assert body["hint"] == "drop the trailing slash: /api/v1/openapi.json"


def test_pages_outside_the_api_keep_the_html_404(cast):
    response = cast.client_for(cast.operator).get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    # and a page name starting with "api" but not the /api/ prefix is not the API's
    assert cast.client_for(cast.operator).get("/apiary/")["Content-Type"].startswith("text/html")
