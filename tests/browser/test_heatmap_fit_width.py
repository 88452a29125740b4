"""The heatmap of a small run in Chromium: "fit the width" uses the panel's
width (up to a cell size that keeps it a grid), and every column that has room
for its response number shows it; where numbers must be thinned they are
evenly spaced and never overlap."""

import pytest
from django.urls import reverse

from tests.browser.conftest import login
from tests.matrix_data import matrix_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

READY = "() => document.body.dataset.heatmapReady === '1'"
# heatmap.js's FIT_CELL: the widest a fitted cell grows.
FIT_CELL = 320


def small_run(agent, memories, responses):
    # The demo's kind of small full run: each memory matters most to one response.
    deltas = [[2.0 if j == i else 0.3 for j in range(responses)] for i in range(memories)]
    return matrix_run(agent, deltas, keys=[f"k{i + 1}" for i in range(memories)])


def open_heatmap(browser, live_server, cast, run, width, fragment=""):
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}{reverse('heatmap', args=[run.pk])}{fragment}")
    page.wait_for_function(READY)
    return page


def widths(page):
    """The panel's inner width, how far it scrolls, and the keys' and cells' widths."""
    return page.evaluate(
        "() => { const s = document.getElementById('heatmap-scroll');"
        " return {panel: s.clientWidth, scrolled: s.scrollWidth,"
        " keys: document.getElementById('heatmap-rows').offsetWidth,"
        " cells: document.getElementById('heatmap-canvas').getBoundingClientRect().width}; }"
    )


def ticks(page):
    """The column labels shown: [(text, left, right, centre)] in page pixels."""
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('#heatmap-cols .hm-tick'), t => {"
        " const r = t.getBoundingClientRect(); return [t.textContent, r.left, r.right, r.left + r.width / 2]; })"
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_it_labels_every_column_of_a_four_by_four_run(browser, live_server, cast, agent, width, screenshots):
    # The walkthrough's 4 × 4 run read "1 2 _ 4": response #3 had cells but no number.
    run = small_run(agent, 4, 4)
    page = open_heatmap(browser, live_server, cast, run, width)
    shown = ticks(page)
    assert [t[0] for t in shown] == ["1", "2", "3", "4"]
    # Each number is centred over its own column.
    canvas = page.locator("#heatmap-canvas").bounding_box()
    cell = canvas["width"] / 4
    for c, (_, _, _, centre) in enumerate(shown):
        assert abs(centre - (canvas["x"] + (c + 0.5) * cell)) < 1.5
    screenshots(page, f"four-by-four-{width}")

    # At a fixed 16 px a cell still has room for a one-digit number.
    page.select_option("#heatmap-zoom", "16")
    assert [t[0] for t in ticks(page)] == ["1", "2", "3", "4"]
    page.context.close()


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("responses", [4, 11])
def test_fit_the_width_fills_the_panel(browser, live_server, cast, agent, width, responses, screenshots):
    # It took ~130 px (4 responses) and ~350 px (11) of a 1,240 px panel.
    run = small_run(agent, 4, responses)
    page = open_heatmap(browser, live_server, cast, run, width)
    w = widths(page)
    assert w["scrolled"] <= w["panel"]  # nothing hidden to the right
    assert w["keys"] + w["cells"] >= 0.85 * w["panel"], w
    # Cells stay as wide as each other, a whole number of pixels.
    assert w["cells"] % responses == 0
    screenshots(page, f"fit-{responses}-responses-{width}")
    page.context.close()


def test_fit_the_width_stops_at_a_cell_size_that_keeps_a_grid(browser, live_server, cast, agent, screenshots):
    # Two responses would be two 600 px stripes: the cells stop at FIT_CELL.
    run = small_run(agent, 3, 2)
    page = open_heatmap(browser, live_server, cast, run, 1280)
    w = widths(page)
    assert w["cells"] == 2 * FIT_CELL
    assert [t[0] for t in ticks(page)] == ["1", "2"]
    screenshots(page, "fit-two-responses")
    page.context.close()


def test_thinned_labels_are_even_and_never_overlap(browser, live_server, cast, agent):
    # 300 responses at 16 px: a three-digit number needs more than one cell,
    # so every other column is numbered (it was every 5th: 44 px apart).
    run = small_run(agent, 3, 300)
    page = open_heatmap(browser, live_server, cast, run, 1280, "#zoom=16")
    shown = ticks(page)
    assert [int(t[0]) for t in shown] == list(range(2, 301, 2))
    for a, b in zip(shown, shown[1:]):
        assert a[2] < b[1], (a, b)  # clear of each other
    # At 4 px they thin to round numbers, evenly; "1" where it stands clear of the next.
    page.select_option("#heatmap-zoom", "4")
    numbers = [int(t[0]) for t in ticks(page)]
    assert numbers[0] == 1 and numbers[1] % 5 == 0
    gaps = {b - a for a, b in zip(numbers[1:], numbers[2:])}
    assert len(gaps) == 1, numbers
    shown = ticks(page)
    for a, b in zip(shown, shown[1:]):
        assert a[2] < b[1], (a, b)
    page.context.close()


def test_fit_the_width_leaves_room_for_a_tall_maps_scrollbar(browser, live_server, cast, agent):
    # 24 memories fit the panel's height at 14 px rows, not at the 32 px that
    # wide cells get: the scrollbar that then appears must not hide the last column.
    run = small_run(agent, 24, 4)
    page = open_heatmap(browser, live_server, cast, run, 1280)
    w = widths(page)
    assert page.evaluate("() => { const s = document.getElementById('heatmap-scroll');"
                         " return s.scrollHeight > s.clientHeight; }")
    assert w["scrolled"] <= w["panel"]
    assert w["keys"] + w["cells"] >= 0.85 * w["panel"], w
    page.context.close()
