"""export_matrix: a run's matrix as JSON or CSV, clamped for display, failures empty."""

import csv
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from scoring.engine import run_inline, start_run
from scoring.heatmap.matrix import load_matrix
from scoring.models import CellScore, Node
from tests.conftest import NO_FAULTS
from tests.engine_support import make_snapshot, private_refserver  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]


@pytest.fixture
def run(agent, ref):
    snapshot = make_snapshot(agent)
    agent.score_concurrency = 1
    agent.save()
    # people/alice (the third key, calls 4 and 5) fails.
    ref.control(**{**NO_FAULTS, "fail_nth": [4, 5]})
    return run_inline(start_run(snapshot, "full"))


def export(*args):
    out = StringIO()
    call_command("export_matrix", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def expected_cell(delta):
    return None if delta is None else (delta if delta > 0.01 else 0.0)


def test_it_exports_json(run):
    data = json.loads(export(run.pk, "--format", "json"))

    assert set(data) == {"memories", "responses", "cells"}
    matrix = load_matrix(run)
    assert data["memories"] == [m["key"] for m in matrix["memories"]]
    responses = Node.objects.responses().filter(snapshot=run.snapshot).order_by("index")
    assert data["responses"] == [{"index": r.index, "text": r.text} for r in responses]
    deltas = {(c.memory.key, c.response.index): c.delta
              for c in CellScore.objects.filter(run=run).select_related("memory", "response")}
    for key, row in zip(data["memories"], data["cells"]):
        assert row == [expected_cell(deltas[key, r.index]) for r in responses]
    alice = data["cells"][data["memories"].index("people/alice")]
    assert alice == [None] * len(alice)
    flat = [v for row in data["cells"] for v in row if v is not None]
    assert min(flat) == 0.0 and max(flat) > 1.0  # negatives and small deltas shown as 0


def test_it_exports_csv(run):
    rows = list(csv.reader(StringIO(export(run.pk))))

    data = json.loads(export(run.pk, "--format", "json"))
    assert rows[0] == ["memory"] + [str(r["index"]) for r in data["responses"]]
    assert [r[0] for r in rows[1:]] == data["memories"]
    for row, cells in zip(rows[1:], data["cells"]):
        assert [None if v == "" else float(v) for v in row[1:]] == cells


def test_it_refuses_a_run_that_is_not_there_or_has_no_cells(run, agent):
    with pytest.raises(CommandError, match="no scoring run with id 999999"):
        export(999999)
    finetune = start_run(run.snapshot, "finetune", params={"count": 5})
    with pytest.raises(CommandError, match="has no memory × response cells"):
        export(finetune.pk)
