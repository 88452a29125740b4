"""The heatmap in Chromium (issue 12): memory keys and response numbers as text
beside the cells (still right after re-sorting, sticky while scrolling), the
view kept in the URL, the keyboard, and the PNG as a labelled figure."""

import struct

import pytest
from django.urls import reverse

from scoring.models.runs import RunStatus
from tests.browser.conftest import login
from tests.conftest import ARTIFACTS
from tests.matrix_data import FAILED, MISSING, matrix_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

READY = "() => document.body.dataset.heatmapReady === '1'"
ROWS, COLS = 60, 300


@pytest.fixture
def run(agent):
    # Row i's importance grows with (i * 7) % ROWS, so sorting shuffles the keys;
    # a failed cell and a harmful one for the legend.
    deltas = [[0.05 * ((i * 7) % ROWS) + 0.02] * COLS for i in range(ROWS)]
    deltas[0][1] = FAILED
    deltas[1][2] = -2.0
    return matrix_run(agent, deltas, keys=[f"topic/{i:02d}-memory" for i in range(ROWS)])


def open_heatmap(browser, live_server, cast, run, fragment=""):
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.goto(f"{live_server.url}{reverse('heatmap', args=[run.pk])}{fragment}")
    page.wait_for_function(READY)
    return page


def row_labels(page):
    return page.locator("#heatmap-rows li").all_inner_texts()


def scroll(page, left, top):
    page.evaluate("([left, top]) => { const s = document.getElementById('heatmap-scroll');"
                  " s.scrollLeft = left; s.scrollTop = top; }", [left, top])


def expected_sorted(run):
    return [f"topic/{i:02d}-memory" for i in sorted(range(ROWS), key=lambda i: (-((i * 7) % ROWS), i))]


def test_the_keys_stay_beside_their_rows_after_sorting(browser, live_server, cast, run, screenshots):
    page = open_heatmap(browser, live_server, cast, run)
    assert row_labels(page) == [f"topic/{i:02d}-memory" for i in range(ROWS)]

    page.select_option("#heatmap-sort", "sum")
    assert row_labels(page) == expected_sorted(run)
    # Each key is level with its row of cells, and selectable text.
    canvas = page.locator("#heatmap-canvas").bounding_box()
    row_h = canvas["height"] / ROWS
    for p in (0, 1, 5):
        label = page.locator("#heatmap-rows li").nth(p).bounding_box()
        assert abs((label["y"] + label["height"] / 2) - (canvas["y"] + (p + 0.5) * row_h)) < 2
    assert page.evaluate("() => getComputedStyle(document.querySelector('#heatmap-rows li')).userSelect") != "none"
    # Response numbers over the columns, as text.
    ticks = page.locator("#heatmap-cols .hm-tick").all_inner_texts()
    assert ticks[0] == "1" and int(ticks[1]) % 5 == 0 and len(ticks) > 5
    screenshots(page, "sorted-by-sum")

    # Scrolled right and down, the keys and the numbers stay in view.
    page.select_option("#heatmap-zoom", "16")
    before = page.locator("#heatmap-rows li").first.bounding_box()
    scroll(page, 2000, 300)
    page.wait_for_timeout(100)
    after = page.locator("#heatmap-rows li").nth(30).bounding_box()
    assert abs(after["x"] - before["x"]) < 1
    head = page.locator("#heatmap-cols").bounding_box()
    assert abs(head["y"] - page.locator("#heatmap-scroll").bounding_box()["y"]) < 2
    screenshots(page, "scrolled-labels-sticky")
    page.context.close()


def test_sort_zoom_and_scroll_are_kept_in_the_url(browser, live_server, cast, run, screenshots):
    page = open_heatmap(browser, live_server, cast, run)
    page.select_option("#heatmap-sort", "max")
    page.select_option("#heatmap-zoom", "16")
    scroll(page, 40 * 16, 3 * 16)
    page.wait_for_function("() => location.hash.includes('col=40') && location.hash.includes('row=3')")
    assert "sort=max" in page.url and "zoom=16" in page.url

    page.reload()
    page.wait_for_function(READY)
    assert page.input_value("#heatmap-sort") == "max" and page.input_value("#heatmap-zoom") == "16"
    assert row_labels(page) == expected_sorted(run)
    assert page.evaluate("() => document.getElementById('heatmap-scroll').scrollLeft") == 40 * 16
    assert page.evaluate("() => document.getElementById('heatmap-scroll').scrollTop") == 3 * 16

    # The same link, opened afresh by someone else.
    shared = page.url
    page.context.close()
    page = login(browser, live_server, cast.operator.username, cast.password)
    page.goto(shared)
    page.wait_for_function(READY)
    assert page.input_value("#heatmap-zoom") == "16"
    assert page.evaluate("() => document.getElementById('heatmap-scroll').scrollLeft") == 40 * 16
    screenshots(page, "restored-from-link")
    page.context.close()


def test_the_cells_are_usable_from_the_keyboard(browser, live_server, cast, run, screenshots):
    page = open_heatmap(browser, live_server, cast, run, "#zoom=16")
    # Reached with Tab, like any control.
    page.locator("#heatmap-zoom").focus()
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "heatmap-canvas":
            break
    assert page.evaluate("() => document.activeElement.id") == "heatmap-canvas"
    ring = page.locator("#heatmap-focus")
    assert ring.is_visible()
    assert page.evaluate("() => getComputedStyle(document.getElementById('heatmap-focus')).outlineStyle") == "solid"

    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    canvas = page.locator("#heatmap-canvas").bounding_box()
    box = ring.bounding_box()
    assert abs(box["x"] - (canvas["x"] + 2 * 16)) < 1 and abs(box["y"] - (canvas["y"] + 16)) < 1
    # Row 1, response #3 (conversation entry 5): -2.0 nats, harmful.
    words = page.locator("#heatmap-announce").inner_text()
    assert words.startswith("topic/01-memory × response #3 (conversation entry 5): harmful")
    assert page.locator("#heatmap-tooltip .t-resp").inner_text().startswith("Response #3 (conversation entry 5)")
    assert page.locator("#heatmap-col-cursor").inner_text() == "#3"
    screenshots(page, "focus-ring")

    page.keyboard.press("Enter")
    page.locator("#cell-detail #cell").wait_for()
    detail = page.locator("#cell-detail").inner_text()
    assert "topic/01-memory × response #3 (conversation entry 5)" in detail and "harmful" in detail

    # Far right and far down stay inside the map, scrolled into view.
    page.locator("#heatmap-canvas").focus()
    page.keyboard.press("End")
    for _ in range(8):
        page.keyboard.press("PageDown")
    assert page.locator("#heatmap-announce").inner_text().startswith(f"topic/{ROWS - 1:02d}-memory × response #{COLS} ")
    # Both boxes from one moment: the cell detail opened above scrolls the
    # page smoothly, and two bounding_box() calls could straddle a step of it.
    ring_box, view = page.evaluate(
        "() => ['heatmap-focus', 'heatmap-scroll'].map(id => document.getElementById(id).getBoundingClientRect())"
        ".map(r => ({x: r.x, y: r.y, width: r.width, height: r.height}))"
    )
    assert view["x"] <= ring_box["x"] <= view["x"] + view["width"]
    assert view["y"] <= ring_box["y"] <= view["y"] + view["height"]
    screenshots(page, "focus-far-corner")
    page.context.close()


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_a_finished_runs_grey_cell_says_it_was_never_scored(browser, live_server, cast, agent):
    # A run that ended (cancelled) with a cell unscored: it never will be
    # ("not scored yet" said otherwise).
    ended = matrix_run(agent, [[MISSING, 1.0]], keys=["windowed/memory"], status=RunStatus.CANCELLED)
    page = open_heatmap(browser, live_server, cast, ended)
    page.locator("#heatmap-canvas").focus()
    assert "never scored: the run ended first" in page.locator("#heatmap-announce").inner_text()
    assert "never scored: the run ended first" in page.locator(".legend").inner_text()
    page.context.close()


def test_the_png_is_a_labelled_figure(browser, live_server, cast, run, request):
    page = open_heatmap(browser, live_server, cast, run, "#sort=sum&zoom=2")
    canvas = page.evaluate("() => [document.getElementById('heatmap-canvas').width, "
                           "document.getElementById('heatmap-canvas').height]")
    with page.expect_download() as download:
        page.click("#heatmap-png")
    path = ARTIFACTS / request.node.name / "heatmap-figure.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    download.value.save_as(str(path))
    # Named as the CSV and JSON downloads are: the agent and the run's status in it.
    assert download.value.suggested_filename == f"memscore-run-{run.pk}-{run.agent.name}-{run.status}-heatmap.png"

    width, height = png_size(path)
    # Room for the keys on the left, the title above, the numbers, axis title and legend below.
    assert width >= canvas[0] + 150 and height >= canvas[1] + 150
    page.context.close()


def test_an_estimate_runs_cells_say_they_are_estimates(browser, live_server, cast, agent):
    # A cell's words, hovered or focused, never read as a measured value.
    run = matrix_run(agent, [[0.4, -2.0], [0.0, 1.5]], keys=["est/a", "est/b"])
    run.mode, run.params = "estimate", {"ablations": 32, "seed": 3}
    run.save()
    page = open_heatmap(browser, live_server, cast, run, "#zoom=16")
    page.locator("#heatmap-canvas").focus()
    page.keyboard.press("ArrowRight")
    words = page.locator("#heatmap-announce").inner_text()
    assert "estimated: harmful" in words and "fitted to 32 random ablations, not measured" in words
    assert page.locator("#heatmap-tooltip").inner_text().count("estimated:") == 1
    page.context.close()


def test_the_focus_ring_of_a_tiny_cell_is_large_enough_to_see(browser, live_server, cast, run):
    # 2 px cells, as a phone's "fit the width" gives a wide run.
    page = open_heatmap(browser, live_server, cast, run, "#zoom=2")
    page.locator("#heatmap-canvas").focus()
    page.keyboard.press("ArrowRight")
    box = page.locator("#heatmap-focus").bounding_box()
    assert box["width"] >= 12 and box["height"] >= 12
    # Centred on the cell it marks (column 1, row 0).
    canvas = page.locator("#heatmap-canvas").bounding_box()
    cell_x = canvas["x"] + 1 * 2 + 1
    assert abs(box["x"] + box["width"] / 2 - cell_x) < 1.5
    page.context.close()
