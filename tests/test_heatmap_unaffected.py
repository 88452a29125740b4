"""The "unaffected" cell state (issue 10: causal windows) wherever a cell is
shown: the heatmap's payload and legend, its cell page, the CSV and JSON
exports. An unaffected cell is an exact 0 before its memory's first
appearance, told apart from a scored 0, a failed cell and a missing one."""

import csv
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from scoring.heatmap.payload import pack
from scoring.models import Agent, CellScore
from scoring.models.runs import RunStatus
from tests.matrix_data import FAILED, MISSING, UNAFFECTED, matrix_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    return matrix_run(agent, [[UNAFFECTED, 0.0, 1.5], [FAILED, FAILED, FAILED], [UNAFFECTED, UNAFFECTED, MISSING]],
                      keys=["late/one", "broken/two", "at-the-end/three"], status=RunStatus.PARTIAL)


def test_the_payload_lists_unaffected_cells_apart_with_their_zero(run):
    data = json.loads(pack(run))
    assert data["values"] == [0, 0, 1500, None, None, None, 0, 0, None]
    assert data["unaffected"] == [[0, 1], [6, 2]]
    assert data["missing"] == [[8, 1]]


def test_the_exports_name_the_state(run):
    out = StringIO()
    call_command("export_matrix", str(run.pk), stdout=out)
    records = csv.DictReader(StringIO(out.getvalue()))
    rows = [(r["memory_key"], r["delta"], r["importance"], r["state"]) for r in records]
    assert rows == [
        ("late/one", "0.0", "0.0", "unaffected"), ("late/one", "0.0", "0.0", "scored"),
        ("late/one", "1.5", "1.5", "scored"),
        ("broken/two", "", "", "failed"), ("broken/two", "", "", "failed"), ("broken/two", "", "", "failed"),
        ("at-the-end/three", "0.0", "0.0", "unaffected"), ("at-the-end/three", "0.0", "0.0", "unaffected"),
        ("at-the-end/three", "", "", "missing"),
    ]
    out = StringIO()
    call_command("export_matrix", str(run.pk), "--format", "json", stdout=out)
    states = [(c["delta"], c["state"]) for c in json.loads(out.getvalue())["cells"]]
    assert states[0] == (0.0, "unaffected") and states[3] == (None, "failed") and states[8] == (None, "missing")


def test_the_legend_and_the_cell_page_say_why(cast, run):
    client = cast.client_for(cast.viewer)
    page = client.get(reverse("heatmap", args=[run.pk])).text
    assert 'data-swatch="unaffected"' in page and "before the memory: unaffected" in page
    memory = run.memories[0]
    cell = client.get(reverse("heatmap_cell", args=[run.pk, memory.pk, run.response_ids[0]])).text
    assert "before the memory: unaffected" in cell and "exactly 0" in cell
    scored_zero = client.get(reverse("heatmap_cell", args=[run.pk, memory.pk, run.response_ids[1]])).text
    assert "no effect" in scored_zero and "unaffected" not in scored_zero
    failed = client.get(reverse("heatmap_cell", args=[run.pk, run.memories[1].pk, run.response_ids[0]])).text
    assert "failed" in failed and "unaffected" not in failed


def test_the_database_refuses_a_failed_or_nonzero_unaffected_cell(run):
    cell = CellScore.objects.filter(run=run, state="unaffected").first()
    for changes in ({"failed": True, "delta": None}, {"delta": 0.5}):
        with pytest.raises(IntegrityError), transaction.atomic():
            CellScore.objects.filter(pk=cell.pk).update(**changes)
    failed = CellScore.objects.filter(run=run, state="failed").first()
    with pytest.raises(IntegrityError), transaction.atomic():
        CellScore.objects.filter(pk=failed.pk).update(state="unaffected")
