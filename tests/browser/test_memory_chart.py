"""The memory history plot in Chromium (issue 12, defect 6): a single scoring
is drawn inside the plot with its weight, and the y axis says nats."""

import pytest
from django.urls import reverse

from scoring.models import Memory
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOP, BOTTOM = 12, 240 - 26  # charts.js's plot area in its viewBox


def test_a_single_scoring_is_drawn_inside_the_plot_with_its_unit(browser, live_server, cast, agent, screenshots):
    memory = Memory.objects.create(agent=agent, key="people/alice", text="Alice runs the sync.")
    memory.record_score(2.0, responses=20)

    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.goto(f"{live_server.url}{reverse('memory_detail', args=[memory.pk])}")
    page.locator("#memory-chart svg").wait_for()
    chart = page.evaluate("""() => {
      const svg = document.querySelector('#memory-chart svg');
      return {
        score: [...svg.querySelectorAll('circle.dot-score')].map(c => +c.getAttribute('cy')),
        weight: [...svg.querySelectorAll('rect.dot-weight')].map(r => +r.getAttribute('y') + 5),
        texts: [...svg.querySelectorAll('text')].map(t => t.textContent),
      };
    }""")

    assert len(chart["score"]) == 1 and len(chart["weight"]) == 1
    # Inside the plot, clear of its top edge (the axis runs past the value), above the x axis.
    for y in chart["score"] + chart["weight"]:
        assert TOP + 10 < y < BOTTOM
    assert "nats" in chart["texts"]
    assert max(float(t) for t in chart["texts"] if t.replace(".", "", 1).isdigit()) > 2.0
    screenshots(page, "single-point")
    page.context.close()


def test_the_chart_reads_on_a_phone(browser, live_server, cast, agent, screenshots):
    """Walkthrough: on a 390 px phone the 960-wide drawing was shrunk to a
    third, its dates and values about 3 px high; and one scoring's table was
    "The latest 1 score"."""
    memory = Memory.objects.create(agent=agent, key="people/alice", text="Alice runs the sync.")
    memory.record_score(2.0, responses=20)
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}{reverse('memory_detail', args=[memory.pk])}")
    page.locator("#memory-chart svg").wait_for()
    labels = page.locator("#memory-chart svg text")
    heights = [labels.nth(i).bounding_box()["height"] for i in range(labels.count())]
    assert min(heights) >= 10, heights
    svg = page.locator("#memory-chart svg").bounding_box()
    assert svg["width"] <= 390
    # The dates under the x axis do not overlap.
    dates = [labels.nth(i).bounding_box() for i in range(labels.count()) if ":" in labels.nth(i).text_content()]
    assert len(dates) >= 2
    dates.sort(key=lambda b: b["x"])
    assert all(a["x"] + a["width"] <= b["x"] for a, b in zip(dates, dates[1:])), dates
    assert page.locator("#memory-chart + script + details summary, details summary").filter(
        has_text="as a table").first.inner_text() == "The score as a table"
    screenshots(page, "chart-390")
    page.context.close()
