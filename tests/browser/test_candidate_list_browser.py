"""The candidate list on a phone and on a laptop: at 390 px each row stacks
(table.stack) so its status and response are on screen, not scrolled off
inside the card; the bulk-select checkboxes stay usable and labelled; at
1280 px it is the table it was. The list says its total."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scoring.models import Candidate
from tests.browser.conftest import login
from tests.candidate_factory import make_candidate

pytestmark = [pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_the_candidate_list_reads_on_a_phone_and_keeps_its_table_on_a_laptop(
        browser, live_server, cast, agent, screenshots):
    picked = [make_candidate(agent, divergence=d, response_text=f"Response number {d} " * 12) for d in (5.0, 4.0)]
    held = make_candidate(agent, divergence=3.0)
    Candidate.objects.filter(pk=held.pk).update(reserved_by=cast.reviewer2,
                                                reserved_until=timezone.now() + timedelta(minutes=10))
    page = login(browser, live_server, cast.reviewer.username, cast.password)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(live_server.url + reverse("candidate_list"))
    assert page.locator("#candidate-count").inner_text().startswith("3 candidates · 3 awaiting review")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    wrap = page.locator("#candidate-table").locator("xpath=..")
    assert wrap.evaluate("e => e.scrollWidth <= e.clientWidth")  # nothing scrolls sideways in the card
    for row in page.locator("#candidate-table tbody tr").all():
        for cell in row.locator("td").all():
            box = cell.bounding_box()
            if box and box["width"]:
                assert box["x"] >= 0 and box["x"] + box["width"] <= 390, cell.inner_text()
    first = page.locator("#candidate-table tbody tr").first
    assert "awaiting review" in first.inner_text() and "Response number 5.0" in first.inner_text()
    # Cells name themselves once the head is hidden.
    assert "nats" in first.inner_text()
    assert "held by rob" in page.locator("#candidate-table tbody tr").nth(2).inner_text()
    # The response has a line of its own, as wide as the row.
    response = first.locator("td.line").bounding_box()
    assert response["width"] > 300
    screenshots(page, "phone")

    # Select every candidate, or one, and approve them: labelled boxes that work.
    page.get_by_label("Select all 3 on this page").check()
    assert page.locator("input[name=ids]:checked").count() == 3
    page.get_by_label("Select all 3 on this page").uncheck()
    for c in picked:
        page.get_by_label(f"Select candidate #{c.pk}").check()
    page.fill("#bulk-bar textarea", "both cite the memory")
    page.click("text=Approve selected")
    page.wait_for_selector(".messages >> text=You approved 2 candidates")
    assert {c.status for c in Candidate.objects.filter(pk__in=[c.pk for c in picked])} == {"approved"}
    assert page.locator("#candidate-count").inner_text().startswith("3 candidates · 1 awaiting review")

    # A laptop: the table with its head, one row per candidate, as before.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + reverse("candidate_list"))
    assert page.locator("#candidate-table thead th", has_text="Response").is_visible()
    row = page.locator("#candidate-table tbody tr").first.bounding_box()
    assert row["height"] < 80
    assert not page.locator("#candidate-table .stacked-only").first.is_visible()
    screenshots(page, "laptop")
    page.context.close()
