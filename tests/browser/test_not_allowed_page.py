"""The 403 page as a reviewer meets it: what was refused, and who they are,
in one sentence (the walkthrough found the name on a line of its own: the
rule for an empty state's title also took the <strong> around the name)."""

import pytest
from django.urls import reverse

from scoring.models import Agent
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]


def test_the_name_of_whoever_is_refused_stays_in_its_sentence(transactional_db, browser, live_server, cast):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    page = login(browser, live_server, cast.reviewer.username, cast.password)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + reverse("agent_edit", args=[agent.pk]))

    box = page.locator(".empty[role=alert]")
    assert box.locator("> strong").evaluate("e => getComputedStyle(e).display") == "block"  # the title
    name = box.locator("p strong", has_text=cast.reviewer.username)
    assert name.evaluate("e => getComputedStyle(e).display") == "inline"
    page.context.close()
