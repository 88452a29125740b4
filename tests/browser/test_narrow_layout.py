"""Layouts that must hold in a real browser: the heatmap's "fit the width"
fits its box, and on a phone no page is wider than the screen."""

import pytest
from django.urls import reverse

from tests.browser.conftest import login
from tests.matrix_data import matrix_run

pytestmark = [pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_fit_the_width_shows_every_column_beside_long_row_labels(browser, live_server, cast, agent):
    # Long keys: the row labels are sized before the cells (sized after, the
    # grid came out wider than its box and the last columns were hidden).
    run = matrix_run(agent, [[1.0] * 52] * 6, keys=[f"projects/a-rather-long-memory-key-{i}" for i in range(6)])
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}{reverse('heatmap', args=[run.pk])}")
    page.wait_for_function("() => document.body.dataset.heatmapReady === '1'")
    widths = page.evaluate(
        "() => { const s = document.querySelector('.heatmap-scroll');"
        " return [s.clientWidth, s.scrollWidth, document.getElementById('heatmap-rows').offsetWidth]; }"
    )
    client, scrolled, labels = widths
    assert labels > 150  # the labels really are wide
    assert scrolled <= client
    page.context.close()


@pytest.mark.django_db(transaction=True)
def test_no_page_is_wider_than_a_phone(browser, live_server, cast, agent):
    run = matrix_run(agent, [[1.0, 2.0, 0.0]] * 3, keys=[f"people/someone-with-a-long-name-{i}" for i in range(3)])
    page = login(browser, live_server, cast.operator.username, cast.password)
    page.set_viewport_size({"width": 390, "height": 800})
    for url in ["home", "agent_list", "run_list", "review_queue", "train_job_list", "activity_list"]:
        page.goto(f"{live_server.url}{reverse(url)}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
    for url in [reverse("run_detail", args=[run.pk]), reverse("agent_detail", args=[agent.pk]),
                reverse("heatmap", args=[run.pk]), reverse("snapshot_detail", args=[run.snapshot_id])]:
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
    # Every section stays reachable: the navigation wraps, nothing is cut off.
    nav = page.locator("header nav a")
    for i in range(nav.count()):
        box = nav.nth(i).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, nav.nth(i).inner_text()
    page.context.close()
