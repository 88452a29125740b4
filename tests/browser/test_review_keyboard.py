"""The candidate page in a real browser: keyboard shortcuts (review.js), htmx
decisions in place, and two reviewers seeing each other's decisions."""

import pytest
from candidate_factory import make_candidate
from django.urls import reverse

from scoring.models import Candidate
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]


def test_it_reviews_from_the_keyboard(transactional_db, browser, live_server, cast, agent):
    agent.required_approvals = 2
    agent.save()
    first = make_candidate(agent, divergence=5.0, alternate_text="Something else about <b>basil</b>.")
    second = make_candidate(agent, divergence=4.0)
    page = login(browser, live_server, "rita", cast.password)
    page.goto(live_server.url + reverse("review_queue"))
    assert f"Candidate #{first.pk}" in page.inner_text("h1")
    assert "<b>basil</b>" in page.inner_text("#alternate-text")  # shown as text, not markup

    # r with no comment asks for one; the server refuses an empty rejection too.
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "id_comment"
    page.click("button[value=reject]")
    page.wait_for_selector("#decide-form .errorlist >> text=A rejection needs a comment")
    page.fill("#id_comment", "not what Alice said")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.wait_for_selector("#decisions >> text=not what Alice said")
    page.wait_for_selector("#status-badge >> text=rejected")
    assert page.input_value("#id_comment") == ""  # a fresh form came back out of band
    first.refresh_from_db()
    assert first.status == Candidate.Status.REJECTED

    page.keyboard.press("c")
    page.keyboard.type("a note for rob")
    page.click("#comment-form button")
    page.wait_for_selector("#decisions >> text=a note for rob")

    page.keyboard.press("n")
    page.wait_for_url("**/review/")
    assert f"Candidate #{second.pk}" in page.inner_text("h1")
    # rob approves while rita looks: the decisions panel polls it in.
    second.decide(cast.reviewer2, "approve")
    page.wait_for_selector("#decisions >> text=rob", timeout=10_000)
    page.keyboard.press("a")
    page.wait_for_selector("#decisions >> text=2 of 2")
    page.wait_for_selector("#status-badge >> text=approved")
    second.refresh_from_db()
    assert second.status == Candidate.Status.APPROVED

    page.keyboard.press("e")
    assert page.evaluate("document.activeElement.id") == "id_edit_text"
    page.context.close()
