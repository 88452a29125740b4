"""A decision the server refuses (a reversal not yet confirmed, a rejection
without a comment) leaves the reviewer on the page they were on, so reloading
it asks again for that page and sends no decision.

The walkthrough: after Reject on an approved candidate the confirmation was
shown at /candidates/<id>/decide/, the answer to the POST; a reload sent the
rejection again, and by then the candidate may no longer be settled, so the
vote went through without the reviewer seeing it."""

import pytest
from candidate_factory import make_candidate
from django.urls import reverse
from playwright.sync_api import expect

from scoring.models import Candidate, Review
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]


def posts_during(page, action):
    """The URLs of the POST requests `action` makes the page send."""
    sent = []

    def note(request):
        if request.method == "POST":
            sent.append(request.url)

    page.on("request", note)
    try:
        action()
    finally:
        page.remove_listener("request", note)
    return sent


def test_reloading_after_a_refused_reversal_sends_nothing(transactional_db, browser, live_server, cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer2, "approve")
    page = login(browser, live_server, "rita", cast.password)
    page_url = live_server.url + reverse("candidate_detail", args=[c.pk])
    page.goto(page_url)
    page.fill("#id_comment", "The physio advice is medical.")
    page.click("button[name=decision][value=reject]")
    page.wait_for_selector("#confirm-reversal")
    # The confirmation, as before: focused, the comment typed kept.
    expect(page.locator("#confirm-reversal")).to_be_focused()
    assert page.input_value("#id_comment") == "The physio advice is medical."
    assert page.url == page_url

    # rob takes his approval back: the candidate is pending again, so a
    # rejection sent again would be recorded, unconfirmed and unseen.
    c.decide(cast.reviewer2, "skip", confirm_reversal=True)
    assert posts_during(page, page.reload) == []
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING
    assert not Review.objects.filter(candidate=c, reviewer=cast.reviewer).exists()
    assert page.locator("#confirm-reversal").count() == 0  # the page as it is now
    page.context.close()


def test_the_edit_forms_refusal_stays_on_the_page_too(transactional_db, browser, live_server, cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer, "reject", "Not what Alice said.")  # rita's own: her approval would reverse it
    page = login(browser, live_server, "rita", cast.password)
    page_url = live_server.url + reverse("candidate_detail", args=[c.pk])
    page.goto(page_url)
    page.click("#edit-form summary")
    page.fill("#id_edit_text", "Alice said the tomatoes need sun.")
    page.click("#edit-form button.primary")
    page.wait_for_selector("#confirm-edit-reversal")
    expect(page.locator("#confirm-edit-reversal")).to_be_focused()
    assert page.input_value("#id_edit_text") == "Alice said the tomatoes need sun."
    assert page.url == page_url
    assert posts_during(page, page.reload) == []
    c.refresh_from_db()
    assert c.status == Candidate.Status.REJECTED and not c.is_edited
    page.context.close()


def test_a_refusal_in_the_queue_stays_in_the_queue_and_keeps_its_agent(
    transactional_db, browser, live_server, cast, agent
):
    c = make_candidate(agent)
    make_candidate(agent, divergence=1.0)  # the next one
    page = login(browser, live_server, "rita", cast.password)
    queue_url = live_server.url + reverse("review_queue") + f"?agent={agent.pk}"
    page.goto(queue_url)
    assert page.locator("h1").inner_text().startswith(f"Candidate #{c.pk}")
    # Clicked, not the r key (which asks for the comment first): refused.
    page.click("button[name=decision][value=reject]")
    expect(page.locator("#decide-form")).to_contain_text("A rejection needs a comment saying why.")
    assert page.url == queue_url
    # Said again with its reason, from the form the refusal brought back.
    page.fill("#id_comment", "Invents a date.")
    page.click("button[name=decision][value=reject]")
    page.wait_for_selector(".messages >> text=You rejected candidate")
    assert f"agent={agent.pk}" in page.url  # still this agent's queue
    c.refresh_from_db()
    assert c.status == Candidate.Status.REJECTED
    page.context.close()


def test_a_rejection_refused_for_want_of_a_comment_puts_the_reviewer_in_the_comment_box(
    transactional_db, browser, live_server, cast, agent
):
    # The form comes back in place (htmx): the walkthrough found focus on the
    # page's body, the next Tab past the buttons, and the error not read out.
    c = make_candidate(agent)
    page = login(browser, live_server, "rita", cast.password)
    page_url = live_server.url + reverse("candidate_detail", args=[c.pk])
    page.goto(page_url)
    page.click("button[name=decision][value=reject]")

    expect(page.locator("#comment-errors[role=alert]")).to_contain_text("A rejection needs a comment saying why.")
    expect(page.locator("#id_comment")).to_be_focused()
    assert page.get_attribute("#id_comment", "aria-invalid") == "true"
    assert page.url == page_url
    assert not Review.objects.filter(candidate=c).exists()
    page.context.close()
