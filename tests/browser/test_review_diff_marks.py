"""The response beside its alternate, in Chromium: the words one has and the
other not are shaded, never struck through. A response far from its
alternate (0.06 similar, in the walkthrough) was one long struck-through
line: the very text a reviewer reads to approve it."""

import pytest
from candidate_factory import detail_url, make_candidate

from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]


def test_the_response_is_shaded_where_the_alternate_differs_not_struck_through(
        browser, live_server, cast, agent, screenshots):
    c = make_candidate(agent, response_text="Tern is still blocked on firmware; Ada is on call until Friday.",
                       alternate_text="I do not know who is on call this week.")
    page = login(browser, live_server, cast.reviewer.username, cast.password)
    page.goto(live_server.url + detail_url(c))
    for marked in ("#response-text del", "#alternate-text ins"):
        first = page.locator(marked).first
        assert first.evaluate("e => getComputedStyle(e).textDecorationLine") == "none", marked
        assert first.evaluate("e => getComputedStyle(e).backgroundColor") not in ("rgba(0, 0, 0, 0)", "transparent")
    # The legends show the same mark as the text.
    legend = page.locator("p:has(+ #response-text) del")
    assert legend.inner_text() == "Shaded"
    assert legend.evaluate("e => getComputedStyle(e).backgroundColor") == page.locator(
        "#response-text del").first.evaluate("e => getComputedStyle(e).backgroundColor")
    screenshots(page, "diff-marks")
    page.context.close()
