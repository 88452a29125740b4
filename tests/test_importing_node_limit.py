"""SNAPSHOT_MAX_NODES: a snapshot with more nodes than the limit imports nothing.

The security walkthrough stored a 300,000-node snapshot (12 MB, no responses)
through the API in 18 s of a web worker; the count is refused before any node
is checked, with the count and the limit named, by the API, the upload form
and the command alike (they share validate_snapshot).
"""

import time

import pytest
from django.conf import settings as django_settings
from django.test import Client

from scoring.importing import SnapshotError, import_snapshot, validate_snapshot
from scoring.models import Activity, Memory, Node, Snapshot
from tests.snapshot_data import NODES, as_bytes, snapshot_doc

LIMIT_ERROR = "snapshot: {} nodes, more than the server's limit of {} (SNAPSHOT_MAX_NODES)"


def _counts():
    return (Snapshot.objects.count(), Node.objects.count(), Memory.objects.count())


def _with_nodes(total):
    """snapshot_doc() padded with user messages to `total` nodes."""
    doc = snapshot_doc(token_ids=True)
    doc["journal"] += [{"role": "user", "text": f"note {i}", "token_ids": [5, 6]} for i in range(total - NODES)]
    return doc


def test_the_default_is_generous():
    assert django_settings.SNAPSHOT_MAX_NODES == 50_000


def test_it_refuses_one_node_over_the_limit_and_imports_nothing(offline_agent, settings):
    settings.SNAPSHOT_MAX_NODES = 40
    with pytest.raises(SnapshotError) as raised:
        import_snapshot(offline_agent, _with_nodes(41))
    assert raised.value.errors == [LIMIT_ERROR.format(41, 40)]
    assert _counts() == (0, 0, 0) and not Activity.objects.exists()
    snapshot = import_snapshot(offline_agent, _with_nodes(40))
    assert snapshot.node_count == 40


def test_it_counts_before_checking_any_node(settings):
    # 300,000 broken nodes: one error, the count, and no time spent on each.
    doc = snapshot_doc()
    doc["journal"] = [{"role": ""}] * 300_000
    started = time.monotonic()
    with pytest.raises(SnapshotError) as raised:
        validate_snapshot(doc)
    assert raised.value.errors == [LIMIT_ERROR.format(300_000 + NODES - 1, 50_000)]
    assert time.monotonic() - started < 1


def test_the_api_answers_400_naming_the_count_and_the_limit(offline_agent, settings):
    settings.SNAPSHOT_MAX_NODES = 40
    response = Client().post("/api/v1/snapshots", as_bytes(_with_nodes(41)), content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {offline_agent.issue_ingest_token()}")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid snapshot", "errors": [LIMIT_ERROR.format(41, 40)]}
    assert _counts() == (0, 0, 0)
