"""An estimate run's cells are labelled as estimates wherever cells are shown
(issue 11): heatmap page and payload, cell page, CSV/JSON exports, memories page."""

import csv
import gzip
import io
import json
import re

import pytest
from django.urls import reverse

from scoring.models import Agent, ScoringRun
from scoring.models.runs import RunStatus
from tests.matrix_data import matrix_run
from tests.test_command_export_matrix import download, export

ESTIMATE = {"ablations": 16, "seed": 4}
RESULT = {"calls_used": 17, "exact_calls": 3, "r2_median": 0.875, "fit_r2": [None, 0.875, 0.9], "cells": 6,
          "memories": 2}


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")


@pytest.fixture
def exact(agent):
    return matrix_run(agent, [[1.5, 0.0, 0.2], [0.0, 0.3, 2.5]], keys=["a", "b"], status=RunStatus.SUCCEEDED)


@pytest.fixture
def estimate(agent):
    run = matrix_run(agent, [[1.5, 0.0, 0.2], [0.0, 0.3, 2.5]], keys=["a", "b"], status=RunStatus.SUCCEEDED)
    ScoringRun.objects.filter(pk=run.pk).update(mode=ScoringRun.Mode.ESTIMATE, params=ESTIMATE, result=RESULT)
    run.refresh_from_db()
    return run


def test_the_exports_mark_every_cell_of_an_estimate_and_none_of_an_exact_run(estimate, exact):
    rows = list(csv.DictReader(io.StringIO(export(estimate.pk))))
    assert rows and {r["kind"] for r in rows} == {"estimate"}
    data = json.loads(export(estimate.pk, "--format", "json"))
    assert data["kind"] == "estimate" and {c["kind"] for c in data["cells"]} == {"estimate"}
    assert data["estimate"]["ablations"] == 16 and data["estimate"]["fit_r2"] == {"1": None, "2": 0.875, "3": 0.9}
    assert {r["kind"] for r in csv.DictReader(io.StringIO(export(exact.pk)))} == {"exact"}
    assert "estimate" not in json.loads(export(exact.pk, "--format", "json"))


def test_the_heatmap_page_and_payload_say_estimate(cast, estimate, exact):
    client = cast.client_for(cast.viewer)
    page = client.get(reverse("heatmap", args=[estimate.pk])).content.decode()
    assert "estimate (16 ablations)" in page and "median held-out R² of the fits 0.88" in page
    assert "heatmap-kind" not in client.get(reverse("heatmap", args=[exact.pk])).content.decode()
    response = client.get(reverse("heatmap_data", args=[estimate.pk]))
    body = b"".join(response.streaming_content) if response.streaming else response.content
    try:
        body = gzip.decompress(body)
    except OSError:
        pass
    payload = json.loads(body)
    assert payload["kind"] == "estimate" and payload["estimate"]["ablations"] == 16
    assert download(client, "heatmap_csv", estimate) == export(estimate.pk).encode()


def test_the_memories_page_keeps_estimates_out_and_says_so(cast, estimate):
    page = cast.client_for(cast.viewer).get(reverse("memory_list", args=[estimate.agent_id])).content.decode()
    assert "No full-matrix run has finished" in page
    assert 'id="memory-estimate"' in page and "estimate (16 ablations)" in page



def test_the_run_pages_title_names_the_estimate_once(cast, estimate):
    # It read "Run #16 · estimate from ablations estimate (16 ablations)" (walkthrough).
    html = cast.client_for(cast.viewer).get(reverse("run_detail", args=[estimate.pk])).text
    title = re.sub(r"<[^>]+>", "", html.split("<h1>", 1)[1].split("</h1>", 1)[0])
    assert title.count("estimate") == 1 and title.endswith("estimate from 16 ablations"), title
