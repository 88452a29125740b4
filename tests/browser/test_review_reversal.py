"""A vote that would reverse a settled candidate, in a real browser: the page
says what a vote would do, the keys (review.js) never confirm a reversal, only
the confirmation's own button does, and the comment typed is kept."""

import pytest
from candidate_factory import make_candidate
from django.urls import reverse

from scoring.models import Activity, Candidate
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]


def test_a_reversal_is_confirmed_by_its_button_not_by_a_key(transactional_db, browser, live_server, cast, agent,
                                                            screenshots):
    c = make_candidate(agent)
    c.decide(cast.reviewer, "approve")
    page = login(browser, live_server, "rob", cast.password)
    page.goto(live_server.url + reverse("candidate_detail", args=[c.pk]))
    assert "Reject: reverses it to rejected" in page.inner_text("#settled-note")
    assert "1 approval (1 needed)" in page.inner_text("#approvals-count")

    page.keyboard.press("c")
    page.keyboard.type("Too vague.")
    page.keyboard.press("Escape")
    # The form posts by htmx: wait for its answer, not for the element (the
    # second time, the one already there would do, its request in flight,
    # and htmx drops a click on a form whose request is in flight).
    with page.expect_response(lambda r: "/decide/" in r.url):
        page.keyboard.press("r")
    page.wait_for_selector("#confirm-reversal")
    assert "your rejection would make it rejected" in page.inner_text("#confirm-reversal")
    assert page.input_value("#id_comment") == "Too vague."
    screenshots(page, "asked-to-confirm")
    # The key again asks again; it does not confirm.
    with page.expect_response(lambda r: "/decide/" in r.url):
        page.keyboard.press("r")
    page.wait_for_selector("#confirm-reversal")
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED

    page.click("#confirm-reversal button")
    page.wait_for_selector(".messages")
    assert "which reverses it from approved to rejected" in page.inner_text(".messages")
    c.refresh_from_db()
    assert c.status == Candidate.Status.REJECTED
    assert Activity.objects.filter(verb="reversed the decision on", actor=cast.reviewer2).count() == 1
    page.context.close()
