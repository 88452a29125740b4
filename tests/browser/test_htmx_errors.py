"""An htmx request that fails says so (static/memscore/htmx_errors.js), and
one from a user logged out meanwhile takes them to the login page, whole.

htmx leaves the page as it was when the answer is a 4xx/5xx or there is no
answer: a click on Reject seemed to do nothing, and the decision was not
recorded. And the login page that Django's redirect led the XHR to was
swapped into the decision form."""

import pytest
from candidate_factory import make_candidate
from django.urls import reverse
from playwright.sync_api import expect

from scoring.models import Candidate, Review
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]

COMMENT = "Alice never said the tomatoes need shade."


def open_candidate(browser, live_server, cast, candidate):
    page = login(browser, live_server, "rita", cast.password)
    page.goto(live_server.url + reverse("candidate_detail", args=[candidate.pk]))
    page.fill("#id_comment", COMMENT)
    return page


def in_another_tab(page, live_server, cast, action):
    """Logs rita out in another tab of the same browser, then in again if `action` is "login again"."""
    other = page.context.new_page()
    other.goto(live_server.url + reverse("home"))
    other.click("button:has-text('Log out')")
    other.wait_for_url("**/login/**")
    if action == "login again":
        other.fill("input[name=username]", "rita")
        other.fill("input[name=password]", cast.password)
        other.click("button[type=submit]")
        other.wait_for_url(lambda url: "/login/" not in url)
    other.close()


def test_a_decision_refused_as_out_of_date_says_so_and_keeps_the_comment(
    transactional_db, browser, live_server, cast, agent, screenshots
):
    c = make_candidate(agent)
    page = open_candidate(browser, live_server, cast, c)
    # Logging in again gives the session a new CSRF token: this page's is
    # stale, and Django's CSRF check answers its POST 403.
    in_another_tab(page, live_server, cast, "login again")
    page.click("button[name=decision][value=reject]")

    alert = page.locator("#request-problem[role=alert]")
    expect(alert).to_contain_text("Not saved: the server refused it (403 Forbidden)")
    expect(alert).to_contain_text("Reload the page and try again.")
    expect(alert).to_contain_text("What you typed is still in the form")
    expect(alert).to_be_in_viewport()
    screenshots(page, "refused-403")
    assert page.input_value("#id_comment") == COMMENT
    assert not Review.objects.filter(candidate=c).exists()
    # Dismissed from the keyboard, it goes, and focus goes back to the button
    # that sent the decision (not to the page's body, the next Tab at its top).
    alert.get_by_role("button", name="Dismiss").focus()
    page.keyboard.press("Enter")
    expect(alert).to_be_empty()
    expect(page.locator("button[name=decision][value=reject]")).to_be_focused()
    page.context.close()


def test_a_decision_on_a_candidate_gone_says_so(transactional_db, browser, live_server, cast, agent):
    c = make_candidate(agent)
    page = open_candidate(browser, live_server, cast, c)
    Candidate.objects.filter(pk=c.pk).delete()
    page.click("button[name=decision][value=approve]")
    alert = page.locator("#request-problem")
    expect(alert).to_contain_text("Not saved: it is no longer there (404 Not Found): it may have been deleted.")
    assert page.input_value("#id_comment") == COMMENT
    page.context.close()


def test_a_server_out_of_reach_is_said_and_the_next_answer_clears_it(
    transactional_db, browser, live_server, cast, agent, screenshots
):
    c = make_candidate(agent)
    page = open_candidate(browser, live_server, cast, c)
    page.route("**/decide/", lambda route: route.abort("connectionrefused"))
    page.click("button[name=decision][value=reject]")

    alert = page.locator("#request-problem")
    expect(alert).to_contain_text("Not sent: the server could not be reached. Check your connection, then try again.")
    screenshots(page, "unreachable")
    assert page.input_value("#id_comment") == COMMENT
    assert not Review.objects.filter(candidate=c).exists()

    # The server answers again: the comment goes, and the message with it.
    page.unroute("**/decide/")
    page.click("#decide-form button:has-text('Add comment only')")
    expect(page.locator("#decisions")).to_contain_text(COMMENT)
    expect(alert).to_be_empty()
    page.context.close()


def test_a_decision_sent_after_logging_out_lands_on_the_login_page(
    transactional_db, browser, live_server, cast, agent, screenshots
):
    c = make_candidate(agent)
    page = open_candidate(browser, live_server, cast, c)
    in_another_tab(page, live_server, cast, "logout")
    page.click("button[name=decision][value=approve]")

    # A page of its own, not the login form swapped into the decision form;
    # after logging in, back to the candidate, not to the URL posted to.
    page.wait_for_url(live_server.url + "/login/?next=" + reverse("candidate_detail", args=[c.pk]), timeout=10_000)
    expect(page.get_by_role("heading", name="Log in to memscore")).to_be_visible()
    expect(page.locator(".messages")).to_contain_text("You were logged out, so what you sent was not saved.")
    screenshots(page, "login")
    assert not Review.objects.filter(candidate=c).exists()
    page.context.close()


def test_a_poll_finding_the_user_logged_out_leaves_them_on_the_page(
    transactional_db, browser, live_server, cast, agent
):
    c = make_candidate(agent)
    page = open_candidate(browser, live_server, cast, c)
    page_url = page.url
    in_another_tab(page, live_server, cast, "logout")

    # The decisions panel polls every 4 s; what is being typed stays.
    alert = page.locator("#request-problem")
    expect(alert).to_contain_text("You have been logged out", timeout=10_000)
    expect(alert).to_contain_text("Copy what you typed before you log in again.")
    login_link = alert.get_by_role("link", name="Log in again")
    assert login_link.get_attribute("href") == "/login/?next=" + reverse("candidate_detail", args=[c.pk])
    assert page.url == page_url
    assert page.input_value("#id_comment") == COMMENT
    assert page.locator("#decisions input[name=password]").count() == 0
    page.context.close()
