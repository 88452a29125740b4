"""The snapshot API token in Chromium: issued by a POST, shown once by the
page it redirects to (the token crosses in a short-lived cookie, never the
session), not shown on reload."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from scoring.models import Agent
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]


def test_a_token_is_shown_once_after_its_redirect_and_not_on_reload(transactional_db, browser, live_server, cast):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    page = login(browser, live_server, cast.operator.username, cast.password)
    page.goto(live_server.url + reverse("agent_token", args=[agent.pk]))
    page.get_by_role("button", name="Issue an API token").click()

    token = page.locator("#token")
    expect(token).to_be_visible()
    agent.refresh_from_db()
    assert agent.check_ingest_token(token.inner_text().strip())
    assert not [c for c in page.context.cookies() if c["name"].startswith("memscore-new-token")]

    page.reload()
    expect(page.locator("#token")).to_have_count(0)
    expect(page.locator("#token-state")).to_have_attribute("data-state", re.compile("issued"))
    page.context.close()
