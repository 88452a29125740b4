"""A snapshot taken in the future (past the clock-skew tolerance of a day) is
refused with an error naming taken_at, and nothing is stored: it would
otherwise be the agent's latest snapshot until that date. Through the API and
the validation every import path shares; the real clock, no frozen time."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from scoring.importing import SnapshotError, validate_snapshot
from scoring.importing.validate import FUTURE_TOLERANCE
from scoring.models import Activity, Node, Snapshot
from tests.snapshot_data import as_bytes, snapshot_doc

URL = "/api/v1/snapshots"


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def _push(agent, taken_at):
    body = as_bytes(snapshot_doc(token_ids=True, taken_at=taken_at))
    return Client().post(URL, body, content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {agent.issue_ingest_token()}")


def test_the_tolerance_is_a_day():
    assert FUTURE_TOLERANCE == timedelta(days=1)


@pytest.mark.parametrize("taken_at", ["2099-01-01T00:00:00Z", "2099-01-01T00:00:00+14:00",
                                      "2099-01-01 00:00"])
def test_the_api_refuses_a_snapshot_from_the_future_and_stores_nothing(agent, taken_at):
    response = _push(agent, taken_at)
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert len(errors) == 1 and errors[0].startswith("taken_at: in the future: ")
    assert "more than 1 day after the server's clock" in errors[0]
    assert (Snapshot.objects.count(), Node.objects.count(), Activity.objects.count()) == (0, 0, 0)


def test_two_days_ahead_is_refused_an_hour_ahead_is_clock_skew(agent):
    now = datetime.now(UTC)
    assert _push(agent, _iso(now + timedelta(days=2))).status_code == 400
    response = _push(agent, _iso(now + timedelta(hours=1)))
    assert response.status_code == 201, response.content
    assert Snapshot.objects.get().taken_at > now


def test_every_import_path_refuses_it_with_the_same_message(agent, tmp_path):
    doc = snapshot_doc(token_ids=True, taken_at="2099-01-01T00:00:00Z")
    with pytest.raises(SnapshotError) as raised:
        validate_snapshot(doc)
    path = tmp_path / "future.json"
    path.write_bytes(as_bytes(doc))
    with pytest.raises(CommandError) as command:
        call_command("import_snapshot", str(path), "--agent", agent.name)
    # The same words; the clock each read may be a second apart (CI saw :57 and :58).
    def same(text):
        return re.sub(r"server's clock \([^)]*\)", "server's clock (now)", text)

    assert same(raised.value.errors[0]) in same(str(command.value))
    assert "server's clock (20" in str(command.value)
    assert not Snapshot.objects.exists()


def test_node_timestamps_are_not_held_to_the_clock(agent):
    # Only taken_at orders an agent's snapshots; a node's time is the agent's record.
    doc = snapshot_doc(token_ids=True)
    doc["conversation"][0]["timestamp"] = "2099-01-01T00:00:00Z"
    assert validate_snapshot(doc)["taken_at"].year == 2026
