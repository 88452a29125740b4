"""The agent page's connection check (scoring/checks.py): operators only, CSRF,
the checks as a page or an htmx fragment, a failure in words."""

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_it_checks_the_connection_for_operators(cast, agent):
    r = cast.client_for(cast.operator).post(reverse("agent_check", args=[agent.pk]))

    assert r.status_code == 200
    page = r.content.decode()
    assert "<html" in page and 'id="checks"' in page
    assert "server answers" in page and "memscore-ref" in page
    assert "Check again" in page


def test_it_renders_the_checks_as_a_fragment_for_htmx(cast, agent):
    r = cast.client_for(cast.operator).post(reverse("agent_check", args=[agent.pk]), HTTP_HX_REQUEST="true")

    page = r.content.decode()
    assert page.lstrip().startswith('<section class="card" id="checks"')
    assert "<html" not in page and "topbar" not in page
    assert "model is served" in page


def test_it_shows_a_failure_in_words(cast, agent):
    agent.model = "qwen-32b"
    agent.save()

    r = cast.client_for(cast.operator).post(reverse("agent_check", args=[agent.pk]), HTTP_HX_REQUEST="true")

    page = r.content.decode()
    assert "FAIL" in page and "set the agent&#x27;s model name to one of them" in page


def test_it_offers_the_check_to_operators_only(cast, agent):
    url = reverse("agent_check", args=[agent.pk])
    page = cast.client_for(cast.operator).get(reverse("agent_detail", args=[agent.pk])).content.decode()
    assert f'action="{url}"' in page and f'hx-post="{url}"' in page

    for user in (cast.viewer, cast.reviewer):
        client = cast.client_for(user)
        assert f'action="{url}"' not in client.get(reverse("agent_detail", args=[agent.pk])).content.decode()
        assert client.post(url).status_code == 403
    assert cast.client_for(cast.operator).get(url).status_code == 405


def test_the_check_needs_csrf(cast, agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.operator)

    assert client.post(reverse("agent_check", args=[agent.pk])).status_code == 403
