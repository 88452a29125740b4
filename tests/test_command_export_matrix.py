"""export_matrix: one export with the heatmap page's downloads, signed deltas and
failed cells kept apart from cells not scored yet."""

import csv
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from scoring.engine import start_run
from scoring.heatmap.export import COLUMNS
from scoring.models import Agent
from scoring.models.runs import RunStatus
from tests.matrix_data import FAILED, MISSING, matrix_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")


@pytest.fixture
def run(agent):
    # A negative (harmful) delta, a small one, a failed cell and one not scored yet.
    return matrix_run(
        agent, [[1.2346, -0.7, FAILED], [0.005, MISSING, 2.5]],
        keys=["people/alice", "=cmd|evil"], status=RunStatus.PARTIAL,
    )


def export(*args):
    out = StringIO()
    call_command("export_matrix", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def download(client, name, run):
    response = client.get(reverse(name, args=[run.pk]))
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def test_it_writes_the_same_bytes_as_the_pages_downloads(cast, run):
    client = cast.client_for(cast.viewer)
    assert export(run.pk).encode() == download(client, "heatmap_csv", run)
    assert export(run.pk, "--format", "json").encode() == download(client, "heatmap_cells_json", run)


def test_it_keeps_negative_deltas_and_tells_failed_from_not_scored(run):
    rows = list(csv.DictReader(StringIO(export(run.pk))))

    assert list(rows[0]) == COLUMNS
    cells = {(r["memory_key"], r["response_number"]): (r["delta"], r["importance"], r["state"]) for r in rows}
    assert cells == {
        ("people/alice", "1"): ("1.2346", "1.2346", "scored"),
        ("people/alice", "2"): ("-0.7", "0.0", "scored"),
        ("people/alice", "3"): ("", "", "failed"),
        # A key that would run as a spreadsheet formula is quoted.
        ("'=cmd|evil", "1"): ("0.005", "0.0", "scored"),
        ("'=cmd|evil", "2"): ("", "", "missing"),
        ("'=cmd|evil", "3"): ("2.5", "2.5", "scored"),
    }
    # Response #k is the k-th assistant response; its conversation entry is beside it.
    assert [r["response_index"] for r in rows[:3]] == ["1", "3", "5"]


def test_it_exports_the_same_records_as_json(run):
    data = json.loads(export(run.pk, "--format", "json"))

    assert data["run"] == run.pk and data["columns"] == COLUMNS
    by_cell = {(c["memory_key"], c["response_number"]): c for c in data["cells"]}
    assert len(by_cell) == 6
    assert by_cell["people/alice", 2] == {
        "memory_id": run.memories[0].pk, "memory_key": "people/alice",
        "response_id": run.response_ids[1], "response_number": 2, "response_index": 3,
        "delta": -0.7, "importance": 0.0, "state": "scored", "kind": "exact",
    }
    assert by_cell["people/alice", 3]["delta"] is None and by_cell["people/alice", 3]["state"] == "failed"
    # JSON carries the key as it is: no spreadsheet to protect.
    assert by_cell["=cmd|evil", 2]["state"] == "missing"


def test_it_refuses_a_run_that_is_not_there_or_has_no_cells(run):
    with pytest.raises(CommandError, match="no scoring run with id 999999"):
        export(999999)
    finetune = start_run(run.snapshot, "finetune", params={"count": 2})
    with pytest.raises(CommandError, match="has no memory × response cells"):
        export(finetune.pk)


@pytest.mark.django_db(transaction=True)
def test_it_stops_quietly_when_its_reader_does(agent):
    # `export_matrix RUN | head`: a closed pipe is the reader's choice, not an error.
    import os
    import subprocess
    import sys

    from tests.conftest import BASE_DIR, _database_url

    run = matrix_run(agent, [[0.5] * 60 for _ in range(60)])  # 3,600 records: more than a pipe holds
    done = subprocess.run(f"{sys.executable} manage.py export_matrix {run.pk} | head -2", shell=True, cwd=BASE_DIR,
                          env={**os.environ, "DATABASE_URL": _database_url()}, capture_output=True, timeout=60)
    assert done.stdout.decode().splitlines()[0].startswith("memory_id,memory_key")
    assert len(done.stdout.decode().splitlines()) == 2
    assert done.stderr == b""


def test_it_says_on_stderr_when_the_run_did_not_succeed(run):
    err = StringIO()
    call_command("export_matrix", str(run.pk), stdout=StringIO(), stderr=err)
    assert err.getvalue() == (f"run {run.pk} finished with failures: cells it never scored are 'missing' or "
                              "'failed', not zero\n")
