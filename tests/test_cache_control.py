"""Cache-Control: private on every response to a logged-in user that sets none
of its own (memscore_site.middleware.private_to_the_user): `Vary: Cookie` alone
let a shared cache keep one user's data pages and exports for another."""

import pytest
from django.test import Client
from django.urls import reverse

from scoring.models import Agent
from scoring.models.runs import RunStatus
from tests.matrix_data import matrix_run


@pytest.fixture
def run(db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    return matrix_run(agent, [[1.0, 0.5]], keys=["people/alice"], memory_texts=["Alice."],
                      responses=["First", "Second"], status=RunStatus.SUCCEEDED)


@pytest.mark.parametrize("page", ["agent_list", "heatmap_csv", "heatmap_cells_json", "candidate_export"])
def test_data_pages_and_exports_are_private(cast, run, page):
    args = [run.pk] if page.startswith("heatmap") else []
    response = cast.client_for(cast.viewer).get(reverse(page, args=args))
    assert response.status_code == 200
    assert response["Cache-Control"] == "private"
    assert "Cookie" in response["Vary"]


def test_a_views_own_cache_control_stays(cast, run):
    viewer = cast.client_for(cast.viewer)
    assert viewer.get(reverse("heatmap_data", args=[run.pk]))["Cache-Control"] == "private, no-cache"
    token_page = cast.client_for(cast.operator).get(reverse("agent_token", args=[run.snapshot.agent.pk]))
    assert token_page["Cache-Control"] == "no-store"
    # Django's own never_cache (the login page) too.
    login = Client().get(reverse("login"))
    assert login["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"


def test_what_depends_on_no_login_is_left_alone(cast):
    # The API (no session: its schema, a refused push), a static file.
    schema = Client().get(reverse("api_openapi"))
    assert schema.status_code == 200 and not schema.has_header("Cache-Control")
    api = Client().post("/api/v1/snapshots", b"{}", content_type="application/json")
    assert api.status_code == 401 and not api.has_header("Cache-Control")
    static = cast.client_for(cast.viewer).get("/static/memscore/forms.js")
    assert static.status_code == 200 and "private" not in static.get("Cache-Control", "")
