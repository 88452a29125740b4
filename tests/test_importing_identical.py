"""scoring.importing: a snapshot sent again is found, not imported twice;
one that differs in anything is new."""

import pytest

from scoring.importing import import_or_find
from scoring.models import Activity, Snapshot
from tests.snapshot_data import snapshot_doc


def test_an_identical_snapshot_is_found_not_imported_twice(offline_agent):
    first, created = import_or_find(offline_agent, snapshot_doc(token_ids=True))
    assert created
    again, created = import_or_find(offline_agent, snapshot_doc(token_ids=True))
    assert (again.pk, created) == (first.pk, False)
    assert Snapshot.objects.count() == 1 and Activity.objects.count() == 1


@pytest.mark.parametrize("change", ["taken_at", "text", "token_ids", "timestamp", "extra node"])
def test_a_snapshot_that_differs_in_anything_is_new(offline_agent, change):
    import_or_find(offline_agent, snapshot_doc(token_ids=True))
    doc = snapshot_doc(token_ids=True)
    node = doc["conversation"][5]
    if change == "taken_at":
        doc["taken_at"] = "2026-11-20T12:00:01Z"
    elif change == "text":
        node["text"] += "!"
    elif change == "token_ids":
        node["token_ids"][1] += 1
    elif change == "timestamp":
        node["timestamp"] = None
    else:
        doc["conversation"].append({"role": "user", "text": "More?", "token_ids": [3]})
    assert import_or_find(offline_agent, doc)[1] is True
    assert Snapshot.objects.count() == 2


def test_a_snapshot_sent_again_without_ids_is_found_without_tokenizing(agent, ref):
    first, _ = import_or_find(agent, snapshot_doc())
    ref.control(fail_rate=1.0, fail_endpoints=["tokenize"], fail_mode="error200")
    again, created = import_or_find(agent, snapshot_doc())
    assert (again.pk, created) == (first.pk, False)
