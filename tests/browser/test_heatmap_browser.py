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
from tests.matrix_data import FAILED, MISSING, UNAFFECTED, matrix_run

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
    expect(page.locator("#heatmap-missing-words")).to_have_text("never scored: the run ended first")
    # Every cell is scored now: the light grey is no longer in the legend; nor
    # are states the run has none of.
    expect(page.locator('.legend > [data-swatch="missing"]')).to_be_hidden()
    expect(page.locator('.legend > [data-swatch="failed"]')).to_be_hidden()
    expect(page.locator('.legend > [data-swatch="unaffected"]')).to_be_hidden()
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


def _open(browser, live_server, cast, run, fragment=""):
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.goto(f"{live_server.url}{reverse('heatmap', args=[run.pk])}{fragment}")
    page.wait_for_function("() => document.body.dataset.heatmapReady === '1'")
    return page


@pytest.mark.django_db(transaction=True)
def test_a_click_names_the_clicked_cell_to_a_screen_reader(browser, live_server, cast, agent):
    run = matrix_run(agent, [[1.0, 2.0, 0.0, -2.5]], keys=["people/alice"], responses=list("abcd"))
    page = _open(browser, live_server, cast, run, "#zoom=16")
    canvas = page.locator("#heatmap-canvas")
    box = canvas.bounding_box()
    cell = box["width"] / 4
    # A first click, the canvas not focused before: the pressed cell, not the first in view.
    page.mouse.click(box["x"] + cell * 2.5, box["y"] + 2)
    expect(canvas).to_have_attribute("aria-label", re.compile(r"response #3 "))
    # Moved by the keys, then clicked elsewhere: the label follows the click at once.
    page.keyboard.press("ArrowLeft")
    expect(canvas).to_have_attribute("aria-label", re.compile(r"response #2 "))
    page.mouse.click(box["x"] + cell * 3.5, box["y"] + 2)
    expect(canvas).to_have_attribute("aria-label", re.compile(r"response #4 .*harmful"))
    expect(page.locator("#heatmap-announce")).to_contain_text("response #4")
    page.context.close()


@pytest.mark.django_db(transaction=True)
def test_the_legend_tells_every_grey_apart_and_unaffected_from_a_small_importance(
        browser, live_server, cast, agent, screenshots):
    # Row 0: scored only over response #1 (its window), so #2-#4 are not in this run.
    # Row 1: before its memory, a small importance, and two cells the cancelled run never scored.
    run = matrix_run(agent, [[1.0, MISSING, MISSING, MISSING], [UNAFFECTED, 0.05, MISSING, MISSING]],
                     keys=["windowed/a", "late/b"], responses=list("abcd"), status=RunStatus.CANCELLED)
    run.calls.filter(memory=run.memories[0]).update(range_end=2)
    page = _open(browser, live_server, cast, run, "#zoom=16")
    legend = page.locator(".legend")
    expect(legend.locator('[data-swatch="missing"]')).to_have_text("never scored: the run ended first")
    expect(legend.locator('[data-swatch="not_in_run"]')).to_have_text("not in this run (outside the memory's window)")
    expect(legend.locator('[data-swatch="unaffected"]')).to_be_visible()
    box = page.locator("#heatmap-canvas").bounding_box()
    cell, row = box["width"] / 4, box["height"] / 2
    not_in_run, missing = _pixel(page, cell * 1.5, 1), _pixel(page, cell * 2.5, row + 1)
    assert not_in_run != missing
    # Unaffected is a pattern (white and dots), never one flat tint like the pale yellow of 0.05.
    line = page.evaluate(
        "([w, y]) => Array.from(document.getElementById('heatmap-canvas').getContext('2d')"
        ".getImageData(0, y, w, 1).data)", [int(cell), int(row)])
    colours = {tuple(line[k:k + 4]) for k in range(0, len(line), 4)}
    assert (255, 255, 255, 255) in colours and len(colours) == 2
    assert tuple(_pixel(page, cell * 1.5, row)) not in colours
    screenshots(page, "legend-1280")
    page.set_viewport_size({"width": 390, "height": 800})
    screenshots(page, "legend-390")
    page.context.close()
