"""Check connection's results read on a 390 px phone, in Chromium (walkthrough):
against a server answering 307, the results table scrolled sideways inside its
card and cut off the redirect's message, and every later row said "the server
does not answer" of a server that had answered. Each check now stacks (its
name and result, then what was found on a line as wide as the card), and the
skipped rows say why they were skipped."""

import pytest
from django.urls import reverse

from scoring.models import Agent
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def test_the_results_of_a_redirecting_server_read_on_a_phone(browser, live_server, cast, redirecting_server,
                                                             screenshots):
    root, _ = redirecting_server
    agent = Agent.objects.create(name="moved", base_url=root + "/v1", model="m")
    page = login(browser, live_server, cast.operator.username, cast.password)
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        page.goto(live_server.url + reverse("agent_detail", args=[agent.pk]))
        page.click("#checks button[type=submit]")  # htmx swaps the card
        page.wait_for_selector("#checks table.checks")
        page.locator("#checks").scroll_into_view_if_needed()
        screenshots(page, f"checks-{viewport['width']}")

        table = page.locator("#checks table.checks")
        # Nothing scrolls sideways: not the table in its card, not the page.
        assert table.evaluate("t => t.scrollWidth <= t.closest('.card').clientWidth"), viewport
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        found = page.locator("#checks td.line")
        assert found.count() == 8
        first = found.first
        assert "memscore does not follow redirects" in first.inner_text()
        assert first.evaluate("c => c.scrollWidth <= c.clientWidth + 1"), viewport
        # The whole message is inside the card, its last word included.
        card = page.locator("#checks").bounding_box()
        box = first.bounding_box()
        assert box["x"] >= card["x"] and box["x"] + box["width"] <= card["x"] + card["width"], viewport
        assert [found.nth(i).inner_text() for i in range(1, 8)] == ["not checked: /v1/models failed"] * 7
        if viewport is PHONE:
            # What was found has a line of its own, nearly as wide as the card.
            assert box["width"] > card["width"] * 0.8
        else:
            assert page.locator("#checks thead").bounding_box()["height"] > 20
    page.context.close()


def test_a_slow_check_says_it_is_asking_and_how_long_it_may_take(browser, live_server, cast, agent, ref):
    """Walkthrough: the card promised an answer "in a few seconds" and, against
    a hung server, showed only a greyed button for 20 s. It now says how long
    each question may take, and that the server is being asked meanwhile."""
    agent.request_timeout = 2
    agent.save()
    ref.control(latency_ms=1500)
    page = login(browser, live_server, cast.operator.username, cast.password)
    page.goto(live_server.url + reverse("agent_detail", args=[agent.pk]))
    assert "each question waits 2 s at most" in page.locator("#checks").inner_text()
    busy = page.locator("#check-busy")
    assert not busy.is_visible() or busy.evaluate("e => getComputedStyle(e).opacity") == "0"
    page.click("#checks button[type=submit]")
    page.wait_for_function("() => getComputedStyle(document.getElementById('check-busy')).opacity === '1'")
    assert busy.inner_text() == "Asking the server…"
    page.wait_for_selector("#checks table.checks", timeout=60_000)
    assert page.locator("#check-busy").evaluate("e => getComputedStyle(e).opacity") == "0"
    page.context.close()
