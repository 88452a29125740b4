"""Cell exports that explain themselves (walkthrough of the heatmap and its
exports): an estimate's fitted cells are "estimated", never "scored"
(measured); a cancelled run's cells before each memory are "unaffected"
(exactly 0) as when a call fails, the rest "missing"; the JSON says which
run, mode, status, agent, snapshot and units its cells are, and what each
state means; the downloads' names carry the run's status."""

import csv
import io
import json

import pytest
from django.urls import reverse

from scoring.engine import start_run
from scoring.heatmap import export
from scoring.heatmap.payload import pack
from scoring.models import ScoringRun
from scoring.models.runs import RunStatus
from tests.engine_support import conversation_doc, make_snapshot
from tests.matrix_data import UNAFFECTED, matrix_run
from tests.test_command_export_matrix import download

pytestmark = pytest.mark.django_db

ESTIMATE = {"ablations": 16, "seed": 4}
RESULT = {"calls_used": 17, "exact_calls": 3, "r2_median": 0.875, "fit_r2": [None, 0.875, 0.9], "cells": 6,
          "memories": 2}


@pytest.fixture
def estimate(offline_agent):
    run = matrix_run(offline_agent, [[1.5, 0.0, 0.2], [UNAFFECTED, 0.3, 144.282]], keys=["a", "b"],
                     status=RunStatus.SUCCEEDED)
    ScoringRun.objects.filter(pk=run.pk).update(mode=ScoringRun.Mode.ESTIMATE, params=ESTIMATE, result=RESULT)
    run.refresh_from_db()
    return run


def csv_rows(client, run):
    return list(csv.DictReader(io.StringIO(download(client, "heatmap_csv", run).decode())))


def test_an_estimates_fitted_cells_are_estimated_not_scored(cast, estimate):
    client = cast.client_for(cast.viewer)
    assert {r["state"] for r in csv_rows(client, estimate)} == {"estimated", "unaffected"}
    data = json.loads(download(client, "heatmap_cells_json", estimate))
    assert {c["state"] for c in data["cells"]} == {"estimated", "unaffected"}
    assert "scored" not in data["states"] and "not measured" in data["states"]["estimated"]


def test_an_estimates_cell_page_says_its_importance_is_estimated(cast, estimate):
    memory = estimate.memories[1]
    page = cast.client_for(cast.viewer).get(
        reverse("heatmap_cell", args=[estimate.pk, memory.pk, estimate.response_ids[2]]), HTTP_HX_REQUEST="true")
    assert "estimated: importance 144.282 nats" in page.text
    assert "fitted to 16 random ablations, not measured" in page.text


def test_the_json_says_what_its_cells_are(cast, estimate):
    data = json.loads(download(cast.client_for(cast.viewer), "heatmap_cells_json", estimate))
    assert data["run"] == estimate.pk and data["mode"] == "estimate" and data["status"] == "succeeded"
    assert data["agent"] == estimate.agent.name and data["snapshot"]["id"] == estimate.snapshot_id
    assert data["units"] == "nats" and data["columns"] == export.COLUMNS
    assert set(data["states"]) == {"estimated", "unaffected", "failed", "missing", "not_in_run"}
    # One R² per response, named by its number (response #k), not a list to count along.
    assert data["estimate"]["fit_r2"] == {"1": None, "2": 0.875, "3": 0.9}


def test_an_exact_runs_json_says_scored_means_measured(cast, offline_agent):
    run = matrix_run(offline_agent, [[1.5, 0.0]], keys=["a"], status=RunStatus.PARTIAL)
    data = json.loads(download(cast.client_for(cast.viewer), "heatmap_cells_json", run))
    assert data["status"] == "partial" and data["status_label"] == RunStatus.PARTIAL.label
    assert "measured by the server" in data["states"]["scored"] and "estimated" not in data["states"]


def test_the_downloads_are_named_with_the_runs_status(cast, offline_agent):
    run = matrix_run(offline_agent, [[1.5, 0.0]], keys=["a"], status=RunStatus.CANCELLED)
    client = cast.client_for(cast.viewer)
    for name, extension in (("heatmap_csv", "csv"), ("heatmap_cells_json", "json")):
        response = client.get(reverse(name, args=[run.pk]))
        assert f'filename="memscore-run-{run.pk}-poc-cancelled-cells.{extension}"' in response["Content-Disposition"]
    # The CSV's columns are as they were: the status is in the name, not in a new column.
    assert list(csv_rows(client, run)[0]) == export.COLUMNS


def first_positions(snapshot):
    """{key: conversation index of its first appearance}; identity keys come before every response."""
    found = {}
    for node in snapshot.nodes.exclude(memory_key="").order_by("index"):
        found.setdefault(node.memory_key, -1 if node.section == "identity" else node.index)
    for node in snapshot.nodes.filter(section="identity").exclude(memory_key=""):
        found[node.memory_key] = -1
    return found


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_runs_cells_before_each_memory_are_unaffected_and_the_rest_missing(agent, cast):
    snapshot = make_snapshot(agent, conversation_doc(agent.name))
    run = start_run(snapshot, "full")
    assert run.cancel(actor_name="test")  # before any call was sent: every call still pending
    first = first_positions(snapshot)

    cells = list(export.cells(run))
    assert cells
    for cell in cells:
        before = cell["response_index"] < first[cell["memory_key"]]
        expected = ("unaffected", 0.0) if before else ("missing", None)
        assert (cell["state"], cell["delta"]) == expected, cell
    assert {c["state"] for c in cells} == {"unaffected", "missing"}

    # The heatmap draws the same: its "unaffected" runs are the export's, with their 0.
    data = json.loads(pack(run))
    drawn = {k for start, length in data["unaffected"] for k in range(start, start + length)}
    assert drawn == {n for n, c in enumerate(cells) if c["state"] == "unaffected"}
    assert data["not_in_run"] == []

    # And one cell's page says so.
    cell = next(c for c in cells if c["state"] == "unaffected")
    page = cast.client_for(cast.viewer).get(
        reverse("heatmap_cell", args=[run.pk, cell["memory_id"], cell["response_id"]]), HTTP_HX_REQUEST="true")
    assert "before the memory: unaffected" in page.text
    missing = next(c for c in cells if c["state"] == "missing")
    page = cast.client_for(cast.viewer).get(
        reverse("heatmap_cell", args=[run.pk, missing["memory_id"], missing["response_id"]]), HTTP_HX_REQUEST="true")
    assert "never scored" in page.text and "not zero" in page.text


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("cancelled", [False, True])
def test_cells_before_each_memory_are_unaffected_from_the_start(agent, cancelled):
    # They depend on where the memory is, not on its call: a running run shows
    # them as its end will (a CSV taken mid-run called them "not scored yet").
    snapshot = make_snapshot(agent, conversation_doc(agent.name))
    run = start_run(snapshot, "full")
    if cancelled:
        assert run.cancel(actor_name="test")
    assert run.is_active is not cancelled
    first = first_positions(snapshot)

    cells = list(export.cells(run))
    assert {c["state"] for c in cells} == {"unaffected", "missing"}
    for cell in cells:
        assert (cell["state"] == "unaffected") == (cell["response_index"] < first[cell["memory_key"]]), cell
