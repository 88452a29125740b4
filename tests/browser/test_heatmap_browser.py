"""The heatmap in a real browser: drawn, hoverable, clickable, and model text
shown as text (keys and responses carry <script>)."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from scoring.models import CellScore, ScoringRun
from scoring.models.runs import RunStatus
from tests.browser.conftest import login
from tests.matrix_data import FAILED, MISSING, matrix_run

pytestmark = [pytest.mark.browser]

XSS = "<script>alert(1)</script>"


@pytest.mark.django_db(transaction=True)
def test_it_draws_a_hoverable_heatmap_in_chromium(browser, live_server, cast, agent):
    run = matrix_run(
        agent, [[2.0, FAILED, 0.0, -2.5]] * 3,
        keys=[f"k{i}/{XSS}" for i in range(3)], responses=[f"resp {j} {XSS}" for j in range(4)],
    )
    page = login(browser, live_server, cast.viewer.username, cast.password)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto(f"{live_server.url}{reverse('heatmap', args=[run.pk])}")
    page.wait_for_function("() => document.body.dataset.heatmapReady === '1'")
    box = page.locator("#heatmap-canvas").bounding_box()
    assert box["width"] >= 4 * 16
    cell = box["width"] / 4
    pixel = page.evaluate(
        "([x, y]) => Array.from(document.getElementById('heatmap-canvas').getContext('2d')"
        ".getImageData(x, y, 1, 1).data)",
        [int(cell * 2.5), 1],
    )
    assert pixel == [255, 255, 255, 255]  # a zero cell is white

    # Hover the first cell: the tooltip shows the key and response as text.
    page.mouse.move(box["x"] + cell / 2, box["y"] + 2)
    tooltip = page.locator("#heatmap-tooltip")
    tooltip.wait_for(state="visible")
    assert tooltip.locator(".t-key").inner_text() == f"k0/{XSS}"
    assert f"resp 0 {XSS}" in tooltip.locator(".t-resp").inner_text()
    assert "importance 2.000" in tooltip.locator(".t-val").inner_text()
    page.mouse.move(box["x"] + cell * 1.5, box["y"] + 2)
    page.wait_for_function("() => document.querySelector('#heatmap-tooltip .t-val').textContent.startsWith('failed')")

    # Click: the server-rendered cell detail is swapped in below.
    page.mouse.click(box["x"] + cell * 3.5, box["y"] + 2)
    page.locator("#cell-detail #cell").wait_for()
    assert "harmful" in page.locator("#cell-detail").inner_text()
    assert f"resp 3 {XSS}" in page.locator("#cell-detail").inner_text()
    assert page.locator("#cell-detail script").count() == 0
    assert not dialogs
    page.context.close()


@pytest.mark.django_db(transaction=True)
def test_it_fills_in_by_itself_while_the_run_is_active(browser, live_server, cast, agent):
    run = matrix_run(agent, [[1.0, MISSING]], keys=["people/alice"], responses=["first", "second"],
                     status=RunStatus.RUNNING, finished=False)
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.goto(f"{live_server.url}{reverse('heatmap', args=[run.pk])}")
    page.wait_for_function("() => document.body.dataset.heatmapReady === '1'")
    assert page.locator("#heatmap-live").is_visible()

    # The worker scores the missing cell and the run ends, with the page open.
    CellScore.objects.create(run=run, memory=run.memories[0], response_id=run.response_ids[1], delta=3.0)
    ScoringRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())

    page.locator("#heatmap-live").wait_for(state="hidden", timeout=15_000)
    # What the page says of the run follows it: it was rendered while it ran.
    expect(page.locator("#heatmap-run-status")).to_have_text(RunStatus.SUCCEEDED.label)
    expect(page.locator("#heatmap-run-status")).to_have_class("badge status-succeeded")
    expect(page.locator("#heatmap-missing-words")).to_have_text("not scored in this run")
    # The PNG's subtitle, too.
    expect(page.locator("#heatmap-canvas")).to_have_attribute("data-subtitle", re.compile(r" · succeeded · "))
    box = page.locator("#heatmap-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + 2)
    page.wait_for_function(
        "() => document.querySelector('#heatmap-tooltip .t-val').textContent.includes('importance 3.000')"
    )
    page.context.close()


def _pixel(page, x, y):
    return page.evaluate(
        "([x, y]) => Array.from(document.getElementById('heatmap-canvas').getContext('2d')"
        ".getImageData(x, y, 1, 1).data)",
        [int(x), int(y)],
    )


@pytest.mark.django_db(transaction=True)
def test_it_colours_harmful_cells_by_the_one_threshold(browser, live_server, cast, agent):
    # -0.7 is past maths.HARMFUL_NATS (0.5), -0.3 is not: blue, then white.
    run = matrix_run(agent, [[1.0, -0.7, -0.3]], keys=["people/alice"], responses=["a", "b", "c"])
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.goto(f"{live_server.url}{reverse('heatmap', args=[run.pk])}")
    page.wait_for_function("() => document.body.dataset.heatmapReady === '1'")
    assert "more than 0.5 nats better without it" in page.locator(".legend").inner_text()
    box = page.locator("#heatmap-canvas").bounding_box()
    cell = box["width"] / 3
    red, green, blue, _ = _pixel(page, cell * 1.5, 1)
    assert blue > red and blue > green  # the harm ramp
    assert _pixel(page, cell * 2.5, 1) == [255, 255, 255, 255]

    tooltip = page.locator("#heatmap-tooltip .t-val")
    page.mouse.move(box["x"] + cell * 1.5, box["y"] + 2)
    page.wait_for_function("() => document.querySelector('#heatmap-tooltip .t-val').textContent.startsWith('harmful')")
    page.mouse.move(box["x"] + cell * 2.5, box["y"] + 2)
    page.wait_for_function(
        "() => document.querySelector('#heatmap-tooltip .t-val').textContent.startsWith('slightly better')"
    )
    assert "-0.300" in tooltip.inner_text()
    page.context.close()
