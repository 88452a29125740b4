"""Reviewing as a team in a real browser: blind review hiding and revealing
others' decisions, and bulk approval from the candidate list."""

import pytest
from candidate_factory import make_candidate
from django.urls import reverse

from scoring.models import Candidate
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]


def test_blind_review_hides_then_reveals(transactional_db, browser, live_server, cast, agent, screenshots):
    agent.blind_review, agent.required_approvals, agent.rejections_to_settle = True, 2, 2
    agent.save()
    c = make_candidate(agent)
    c.decide(cast.reviewer2, "reject", "rob thinks it invents a date")
    page = login(browser, live_server, "rita", cast.password)
    page.goto(live_server.url + reverse("candidate_detail", args=[c.pk]))

    panel = page.inner_text("#decisions")
    assert "rob thinks it invents a date" not in panel and "rob" not in panel
    assert "1 decision by others is hidden until you approve or reject" in panel
    screenshots(page, "hidden")

    page.click("button[value=approve]")
    page.wait_for_selector(".messages >> text=You approved candidate")
    page.goto(live_server.url + reverse("candidate_detail", args=[c.pk]))
    panel = page.inner_text("#decisions")
    assert "rob thinks it invents a date" in panel and "hidden" not in panel
    screenshots(page, "revealed")
    page.context.close()


def test_bulk_approve_from_the_list(transactional_db, browser, live_server, cast, agent, screenshots):
    picked = [make_candidate(agent, divergence=d) for d in (5.0, 4.0)]
    left = make_candidate(agent, divergence=1.0)
    page = login(browser, live_server, "rita", cast.password)
    page.goto(live_server.url + reverse("candidate_list") + "?min_divergence=3")
    assert page.locator("input[name=ids]").count() == 2  # filtered by divergence
    page.check("input[data-select-all]")
    assert page.locator("input[name=ids]:checked").count() == 2
    page.fill("#bulk-bar textarea", "both cite the memory")
    screenshots(page, "selected")
    page.click("text=Approve selected")
    page.wait_for_selector(".messages >> text=You approved 2 candidates")
    assert "min_divergence=3" in page.url  # back to the same filtered list
    screenshots(page, "approved")
    for c in picked:
        c.refresh_from_db()
        assert c.status == Candidate.Status.APPROVED
    left.refresh_from_db()
    assert left.status == Candidate.Status.PENDING
    page.context.close()
