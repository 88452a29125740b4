"""The snapshot page's start-a-run form in Chromium: only the chosen mode's
fields show (and are sent); refused input comes back with the mode and the
values as typed, each error beside its labelled field; without JavaScript
every mode's fields show, each under its mode's name."""

import pytest
from django.urls import reverse

from scoring.importing import import_snapshot
from scoring.models import Agent, ScoringRun
from tests.browser.conftest import login
from tests.snapshot_data import snapshot_doc

pytestmark = [pytest.mark.browser]


@pytest.fixture
def snapshot(transactional_db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    return import_snapshot(agent, snapshot_doc(token_ids=True))


def visible_modes(page):
    return [f.get_attribute("data-mode") for f in page.locator("fieldset[data-mode]:visible").all()]


def test_only_the_chosen_modes_fields_show_and_errors_come_back_beside_them(
        browser, live_server, cast, snapshot, screenshots):
    page = login(browser, live_server, "otto", cast.password)
    page.goto(live_server.url + reverse("snapshot_detail", args=[snapshot.pk]))
    assert visible_modes(page) == ["full"]
    assert "blank: every memory" in page.inner_text("#run-mode-full")
    page.select_option("#id_mode", "incremental")
    assert visible_modes(page) == ["incremental"]
    page.fill("#id_max_age", "-1")
    page.fill("#id_response_window", "0")
    screenshots(page, "incremental-typed")
    page.click("#start-run button[type=submit]")
    page.wait_for_selector("#run-form-errors")
    screenshots(page, "incremental-refused")
    # Where the person lands: the list of what to fix has focus (far down a phone's page).
    assert page.evaluate("document.activeElement.id") == "run-form-errors"

    # The mode and the values as typed, only that mode's fields, each error by its field.
    assert page.input_value("#id_mode") == "incremental"
    assert visible_modes(page) == ["incremental"]
    assert page.input_value("#id_max_age") == "-1" and page.input_value("#id_response_window") == "0"
    summary = page.inner_text("#run-form-errors")
    assert "Max age (seconds): must be at least 0" in summary and "Response window: must be at least 1" in summary
    assert "max_age" not in summary
    field = page.locator("#id_max_age").locator("xpath=ancestor::div[@class='field']")
    assert "must be at least 0" in field.inner_text()
    assert not ScoringRun.objects.exists()

    # One memory with no key: the mode stays, the key's select says so.
    page.select_option("#id_mode", "memory")
    page.click("#start-run button[type=submit]")
    page.wait_for_selector("#run-form-errors")
    assert page.input_value("#id_mode") == "memory" and visible_modes(page) == ["memory"]
    assert "Memory key: Choose the memory to score." in page.inner_text("#run-form-errors")

    # A fine-tune run: alternates ticked on the page; unticked, it stays off when refused.
    page.select_option("#id_mode", "finetune")
    assert page.is_checked("#id_alternates")
    page.uncheck("#id_alternates")
    page.fill("#id_count", "-1")
    page.click("#start-run button[type=submit]")
    page.wait_for_selector("#run-form-errors")
    assert page.input_value("#id_count") == "-1" and not page.is_checked("#id_alternates")
    screenshots(page, "finetune-refused")
    assert not ScoringRun.objects.exists()
    page.context.close()


def test_without_javascript_every_mode_shows_under_its_name(browser, live_server, cast, snapshot, screenshots):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", "otto")
    page.fill("input[name=password]", cast.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    page.goto(live_server.url + reverse("snapshot_detail", args=[snapshot.pk]))
    assert visible_modes(page) == ["full", "memory", "incremental", "finetune", "estimate", "groups"]
    form = page.inner_text("#start-run")
    assert "only the chosen mode's are used, the others are ignored" in form
    assert "Estimate from ablations (used only with this mode)" in page.inner_text("#run-mode-estimate legend")
    screenshots(page, "no-js")
    context.close()
