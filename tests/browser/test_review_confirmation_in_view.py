"""On a phone, the confirmation a reversal asks for is where the reviewer
lands. The walkthrough (390 px): on an approved candidate a reviewer typed a
comment and tapped Reject; the answer opened at the top of the page, still
showing "approved", with the confirmation ~1,900 px further down, no scroll and
no focus, so it looked like nothing had happened. The confirmation now takes
the focus (so the browser scrolls to it): on the page the form posts to, and
when htmx swaps the form in."""

import pytest
from candidate_factory import make_candidate
from django.urls import reverse
from playwright.sync_api import expect

from scoring.models import Candidate
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
# The demo's candidates sit after long turns: the page is as tall as there.
LONG = "Sam climbs at The Depot Leeds on Tuesday and Friday evenings from 18:30, usually with Priya. " * 12


def lands_on(page, confirmation):
    """The reviewer sees `confirmation`: it has the focus, its button is in view."""
    expect(page.locator(f"{confirmation} button[name=confirm_reversal]")).to_be_in_viewport(ratio=1, timeout=5_000)
    expect(page.locator(confirmation)).to_be_focused()


def open_on_a_phone(browser, live_server, cast, c):
    page = login(browser, live_server, "rita", cast.password)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + reverse("candidate_detail", args=[c.pk]))
    return page


@pytest.fixture
def approved(agent, cast):
    c = make_candidate(agent, user_text=LONG, memory_text=LONG)
    c.decide(cast.reviewer2, "approve")
    return c


def test_after_reject_on_an_approved_candidate_the_confirmation_is_in_view(
    transactional_db, browser, live_server, cast, approved, screenshots
):
    page = open_on_a_phone(browser, live_server, cast, approved)
    page.fill("#id_comment", "The physio advice is medical.")
    page.click("button[name=decision][value=reject]")
    page.wait_for_selector("#confirm-reversal")
    lands_on(page, "#confirm-reversal")
    assert "Confirm: reject and reverse it" in page.inner_text("#confirm-reversal")
    assert "{#" not in page.inner_text("#decide-form")  # a template comment over two lines shows as text
    screenshots(page, "confirmation-in-view")
    # Its own button confirms, as before; the comment typed is kept.
    assert page.input_value("#id_comment") == "The physio advice is medical."
    page.click("#confirm-reversal button[name=confirm_reversal]")
    page.wait_for_selector(".messages")
    approved.refresh_from_db()
    assert approved.status == Candidate.Status.REJECTED
    page.context.close()


def test_over_htmx_the_swapped_in_confirmation_is_focused_and_in_view(
    transactional_db, browser, live_server, cast, approved
):
    page = open_on_a_phone(browser, live_server, cast, approved)
    # A button that posts with hx-post (as an older page's did): the answer
    # swaps the form in place, and htmx focuses its [autofocus].
    page.evaluate("""() => {
        const reject = document.querySelector("button[name=decision][value=reject]");
        reject.setAttribute("hx-post", reject.form.action);
        htmx.process(reject);
    }""")
    page.fill("#id_comment", "The physio advice is medical.")
    page.evaluate("window.scrollTo(0, 0)")
    page.click("button[name=decision][value=reject]")
    page.wait_for_selector("#confirm-reversal")
    lands_on(page, "#confirm-reversal")
    assert page.url.endswith(reverse("candidate_detail", args=[approved.pk]))  # swapped, not a new page
    page.context.close()


def test_the_edit_forms_confirmation_is_in_view_too(transactional_db, browser, live_server, cast, agent):
    c = make_candidate(agent, user_text=LONG, memory_text=LONG)
    c.decide(cast.reviewer, "reject", "Not what Alice said.")  # rita's own: her approval would reverse it
    page = open_on_a_phone(browser, live_server, cast, c)
    page.click("#edit-form summary")
    page.fill("#id_edit_text", "Alice said the tomatoes need sun.")
    page.click("#edit-form button.primary")
    page.wait_for_selector("#confirm-edit-reversal")
    lands_on(page, "#confirm-edit-reversal")
    page.context.close()
