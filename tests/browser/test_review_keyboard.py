"""The candidate page in a real browser: keyboard shortcuts (review.js) with
one comment box, every decision moving on, n moving past, and two reviewers
seeing each other's decisions."""

import pytest
from candidate_factory import make_candidate
from django.urls import reverse

from scoring.models import Candidate, Comment
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]


def test_it_rejects_with_a_reason_from_the_keyboard(transactional_db, browser, live_server, cast, agent, screenshots):
    """Defect 2: c focused a separate comment box, so c, type, Esc, r asked for a reason again."""
    agent.required_approvals = 2
    agent.save()
    first = make_candidate(agent, divergence=5.0, alternate_text="Something else about <b>basil</b>.")
    second = make_candidate(agent, divergence=4.0)
    page = login(browser, live_server, "rita", cast.password)
    page.goto(live_server.url + reverse("review_queue"))
    assert f"Candidate #{first.pk}" in page.inner_text("h1")
    assert "<b>basil</b>" in page.inner_text("#alternate-text")  # shown as text, not markup
    assert "Needs 2 approvals; 1 rejection rejects it." in page.inner_text("#settle-rule")

    # r with no comment asks for one, in the one comment box.
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "id_comment"
    page.keyboard.press("Escape")
    page.keyboard.press("c")
    assert page.evaluate("document.activeElement.id") == "id_comment"
    page.keyboard.type("not what Alice said")
    screenshots(page, "reason-typed")
    page.keyboard.press("Escape")
    page.keyboard.press("r")

    # Rejected with that reason, and on to the next candidate, saying so.
    page.wait_for_selector(f"h1 >> text=Candidate #{second.pk}")
    assert f"You rejected candidate #{first.pk}: it is now rejected." in page.inner_text(".messages")
    screenshots(page, "moved-on")
    first.refresh_from_db()
    assert first.status == Candidate.Status.REJECTED
    assert first.reviews.get().comment == "not what Alice said"
    page.context.close()


def test_comment_only_stays_and_n_moves_past(transactional_db, browser, live_server, cast, agent, screenshots):
    first = make_candidate(agent, divergence=5.0)
    second = make_candidate(agent, divergence=4.0)
    page = login(browser, live_server, "rita", cast.password)
    page.goto(live_server.url + reverse("review_queue"))

    page.keyboard.press("c")
    page.keyboard.type("a note for rob")
    page.click("text=Add comment only")
    page.wait_for_selector("#decisions >> text=a note for rob")
    assert page.input_value("#id_comment") == ""  # a fresh box came back out of band
    assert f"Candidate #{first.pk}" in page.inner_text("h1")
    assert Comment.objects.get().text == "a note for rob"

    # n on the undecided candidate moves past it, not back to it.
    page.keyboard.press("n")
    page.wait_for_selector(f"h1 >> text=Candidate #{second.pk}")
    # rob approves while rita looks: the decisions panel polls it in.
    second.decide(cast.reviewer2, "reject", "off topic")
    page.wait_for_selector("#decisions >> text=rob", timeout=10_000)
    screenshots(page, "polled-in")
    page.keyboard.press("e")
    assert page.evaluate("document.activeElement.id") == "id_edit_text"
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    page.wait_for_selector(".messages >> text=You approved candidate")
    second.refresh_from_db()
    assert second.reviews.count() == 2
    page.context.close()
