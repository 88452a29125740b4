"""The glossary: one page defining every figure's terms, its numbers from scoring.maths."""

import pytest
from candidate_factory import make_candidate
from django.urls import reverse

from scoring import maths
from tests.matrix_data import matrix_run

TERMS = ["nats", "delta", "divergence", "importance", "weight", "harmful", "never-matters", "failed", "unaffected",
         "estimate", "groups", "redundant", "response-number"]


def test_it_defines_every_term(cast):
    page = cast.client_for(cast.viewer).get(reverse("glossary"))
    assert page.status_code == 200
    for term in TERMS:
        assert f'id="{term}"' in page.text, term
    assert "−0.5 nats" in page.text and "above 0.01 nats" in page.text and "At least 10 " in page.text


def test_its_numbers_come_from_maths(cast, monkeypatch):
    monkeypatch.setattr(maths, "HARMFUL_NATS", 0.75)
    monkeypatch.setattr(maths, "ZERO_THRESHOLD", 0.02)
    monkeypatch.setattr(maths, "NEVER_MATTERS_MIN_RESPONSES", 12)
    monkeypatch.setattr(maths, "GROUP_THRESHOLD_NATS", 0.25)
    monkeypatch.setattr(maths, "REDUNDANCY_MARGIN_NATS", 1.5)
    page = cast.client_for(cast.viewer).get(reverse("glossary"))
    assert "−0.75 nats" in page.text and "above 0.02 nats" in page.text and "At least 12 " in page.text
    assert "(by default 0.25 nats)" in page.text and "at least 1.5 nats more" in page.text
    assert "−0.5 nats" not in page.text


def test_it_is_for_any_signed_in_user_only(cast, client):
    assert cast.client_for(cast.outsider).get(reverse("glossary")).status_code == 200
    assert client.get(reverse("glossary")).status_code == 302


@pytest.fixture
def run(cast, agent):
    # The shared agent (reference server): make_candidate tokenizes with it.
    return matrix_run(agent, [[1.0, -0.7]], keys=["people/alice"])


def test_the_pages_with_figures_link_to_it(cast, run):
    client = cast.client_for(cast.operator)
    memory = run.memories[0]
    for url in [
        reverse("heatmap", args=[run.pk]),
        reverse("memory_list", args=[run.agent_id]),
        reverse("memory_detail", args=[memory.pk]),
        reverse("heatmap_cell", args=[run.pk, memory.pk, run.response_ids[0]]),
        reverse("run_detail", args=[run.pk]),
        reverse("candidate_list"),
        reverse("candidate_detail", args=[make_candidate(run.agent).pk]),
    ]:
        page = client.get(url)
        assert page.status_code == 200, url
        assert reverse("glossary") in page.text, url
