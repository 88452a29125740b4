"""The top bar highlights the section a page belongs to (base.html reads it
from the route's name). Every route of scoring/urls.py is listed here with its
section, so a new route, or a change to the rule, says where it lands.

The walkthrough found the start-a-run form, sent back refused, highlighting
"Runs": its route (run_start, /snapshots/<id>/runs/new/) sits under an agent's
snapshot, whose page (Agents) holds the form."""

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import URLPattern, reverse

from scoring import urls
from scoring.importing import import_snapshot
from scoring.models import Agent
from tests.snapshot_data import snapshot_doc

SECTIONS = {
    "Home": ["home"],
    "Agents": [
        "agent_list", "agent_create", "agent_detail", "agent_edit", "agent_token", "agent_check",
        "snapshot_upload", "snapshot_detail", "memory_list", "memory_detail",
        "run_start",  # the snapshot page's form, sent back refused
    ],
    "Runs": [
        "run_list", "run_detail", "run_progress", "run_cancel", "run_retry", "run_resume", "run_exact_top",
        "run_compare_choose",
        "run_compare", "heatmap", "heatmap_cell",
    ],
    "Review": [
        "review_queue", "review_agreement", "candidate_list", "candidate_detail", "candidate_decide",
        "candidate_comment", "candidate_edit", "candidate_bulk",
    ],
    "Training": ["train_job_list", "train_send", "train_job_detail", "train_job_retry", "train_job_cancel",
                 "train_job_rescore"],
    "Activity": ["activity_list"],
    None: ["glossary"],
}
# Routes that answer no HTML page, so no top bar.
NO_PAGE = ["favicon", "heatmap_data", "heatmap_csv", "heatmap_cells_json", "candidate_export", "api_snapshots",
           "api_openapi"]


def route_names():
    return [p.name for p in urls.urlpatterns if isinstance(p, URLPattern) and p.name]


def highlighted(html):
    """The top bar's sections marked aria-current."""
    nav = html[html.index('<nav aria-label="Sections">'):html.index("</nav>")]
    return re.findall(r'<a href="[^"]*" aria-current="page">([^<&]+)', nav)


def test_every_route_has_a_section_listed_here():
    listed = [name for names in SECTIONS.values() for name in names] + NO_PAGE
    assert sorted(listed) == sorted(route_names())


@pytest.mark.parametrize("section, name", [(s, n) for s, names in SECTIONS.items() for n in names])
def test_the_top_bar_highlights_the_routes_section(cast, section, name):
    request = RequestFactory().get("/")
    request.user = cast.viewer
    request.resolver_match = type("Match", (), {"url_name": name})()
    assert highlighted(render_to_string("base.html", request=request)) == ([section] if section else [])


def test_no_top_bar_sections_for_a_visitor_not_logged_in():
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    assert '<nav aria-label="Sections">' not in render_to_string("base.html", request=request)


@pytest.fixture
def snapshot(db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    return import_snapshot(agent, snapshot_doc(token_ids=True))


def test_the_start_a_run_form_is_under_agents_shown_and_sent_back_refused(cast, snapshot):
    client = cast.client_for(cast.operator)
    page = client.get(reverse("snapshot_detail", args=[snapshot.pk]))
    assert f'action="{reverse("run_start", args=[snapshot.pk])}"' in page.text
    assert highlighted(page.text) == ["Agents"]

    refused = client.post(reverse("run_start", args=[snapshot.pk]), {"mode": "estimate", "ablations": "0"})
    assert refused.status_code == 200 and "must be at least 8" in refused.text
    assert highlighted(refused.text) == ["Agents"]
