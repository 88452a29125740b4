"""The start form's cost note of the groups mode follows the separator typed
(walkthrough: with "-" typed it still said "13 groups by “/” here, 14 calls",
and the run made 24 groups and 25 calls)."""

import pytest
from django.urls import reverse

from scoring.context import Outline
from scoring.importing import import_snapshot
from scoring.models import Agent
from scoring.modes.groups import group_keys
from tests.browser.conftest import login
from tests.snapshot_data import snapshot_doc

pytestmark = [pytest.mark.browser]


@pytest.fixture
def snapshot(transactional_db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    doc = snapshot_doc(token_ids=True)
    # Keys that group differently by "/" and by "-".
    for i, key in enumerate(["team-a/x", "team-a/y", "team-b/z", "team-c/w"]):
        doc["conversation"].append({"memory": key, "text": f"Fact {i}.", "timestamp": "2026-11-20T12:00:00Z",
                                    "token_ids": [7, 8, 9]})
    return import_snapshot(agent, doc)


def test_the_groups_note_counts_by_the_separator_typed(browser, live_server, cast, snapshot, screenshots):
    keys = Outline(snapshot).keys()
    by_slash, by_dash = len(group_keys(keys, "/")), len(group_keys(keys, "-"))
    assert by_slash != by_dash
    page = login(browser, live_server, "otto", cast.password)
    page.goto(live_server.url + reverse("snapshot_detail", args=[snapshot.pk]))
    page.select_option("#id_mode", "groups")
    fieldset = page.locator("#run-mode-groups")
    assert f"{by_slash} groups by “/” here" in fieldset.inner_text()
    figures = fieldset.locator("[data-group-figures]")
    assert figures.count() == 0 or figures.is_hidden()

    separator = fieldset.locator("input[name=separator]")
    separator.fill("-")
    expected = f"By “-” as typed: {by_dash} groups, {by_dash + 1} calls with the baseline"
    assert expected in figures.inner_text()
    screenshots(page, "groups-note-dash")
    separator.fill("/")
    assert figures.is_hidden()
    separator.fill("<b>")  # the person's text, shown as text
    assert "By “<b>” as typed" in figures.inner_text()
    page.context.close()
