"""A run's cells as one export: the same bytes from the heatmap page's
download and from `manage.py export_matrix`.

Long format, one record per (memory, response) cell, columns COLUMNS: the
signed delta, its importance (maths.cell_importance), its state (STATES says
what each means) and its kind: "exact" (leave-one-out) or "estimate" (fitted
to random ablations, the estimate mode: never to be read as an exact delta;
its fitted cells are "estimated", never "scored"). docs/scoring.md
("Exports") describes it.
"""

import csv
import json
import math

from scoring import maths
from scoring.heatmap import matrix
from scoring.models.runs import Mode

COLUMNS = [
    "memory_id", "memory_key", "response_id", "response_number", "response_index", "delta", "importance", "state",
    "kind",
]
SCORED, UNAFFECTED, FAILED, MISSING = "scored", "unaffected", "failed", "missing"
NOT_IN_RUN, ESTIMATED = "not_in_run", "estimated"
# What each state means, short: the JSON carries it, docs/scoring.md says it at length.
STATES = {
    SCORED: "measured by the server, with and without the memory (delta in nats)",
    ESTIMATED: "fitted to random ablations (an estimate run), not measured: an estimate of the delta in nats",
    UNAFFECTED: "the response comes before the memory's first appearance: exactly 0, not asked of the server",
    FAILED: "the score call failed: no value, never zero",
    MISSING: "not scored: its call has not finished yet, or never will (the run was cancelled)",
    NOT_IN_RUN: "outside every window this run scored the memory over: no value, never zero",
}
UNITS = "nats"
STATE_NAMES = {matrix.SCORED: SCORED, matrix.UNAFFECTED: UNAFFECTED, matrix.FAILED: FAILED, matrix.MISSING: MISSING,
               matrix.NOT_IN_RUN: NOT_IN_RUN}


def kind(run):
    """"estimate" for a run whose cells are fitted (the estimate mode), else "exact"."""
    return "estimate" if run.mode == Mode.ESTIMATE else "exact"


def cells(run):
    """The run's cells as dicts keyed by COLUMNS, memory by memory, responses
    in conversation order; delta and importance are None unless scored,
    estimated or unaffected (0)."""
    memories, responses, deltas, states = matrix.load_matrix_states(run)
    cell_kind = kind(run)
    # An estimate's values were fitted, not measured by the server.
    names = {**STATE_NAMES, matrix.SCORED: ESTIMATED} if cell_kind == "estimate" else STATE_NAMES
    for i, memory in enumerate(memories):
        for j, response in enumerate(responses):
            delta = float(deltas[i, j])
            state = names[int(states[i, j])]
            if math.isnan(delta):
                delta = importance = None
            else:
                importance = maths.cell_importance(delta)
            yield {
                "memory_id": memory["id"], "memory_key": memory["key"],
                "response_id": response["id"], "response_number": response["number"],
                "response_index": response["index"],
                "delta": delta, "importance": importance, "state": state, "kind": cell_kind,
            }


def csv_lines(run):
    """The CSV, one line at a time (header first), for streaming.

    Numbers are written with repr(): the shortest decimal that reads back as
    the stored float. Lines end in CRLF (RFC 4180), from the page and the CLI.
    """
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for cell in cells(run):
        row = [cell[name] for name in COLUMNS]
        row[1] = _csv_text(cell["memory_key"])
        row[5:7] = ["" if v is None else repr(v) for v in (cell["delta"], cell["importance"])]
        yield writer.writerow(row)


def json_chunks(run):
    """The same records as one JSON document, in pieces for streaming: a head
    that says what the cells are (head()), then "cells": [{column: value}, ...],
    with null for a delta or importance that has no value."""
    yield json.dumps(head(run), ensure_ascii=False)[:-1] + ',"cells":['
    for n, cell in enumerate(cells(run)):
        yield ("," if n else "") + "\n" + json.dumps(cell, ensure_ascii=False, separators=(",", ":"))
    yield "\n]}\n"


def head(run):
    """What a reader of the JSON needs before its cells: the run (id, mode,
    status: a partial, cancelled or still running run has cells with no
    value), its agent and snapshot, the units, what each state means and the
    columns. An estimate adds "estimate": its K, seed and each response's
    held-out R² (fit_r2, keyed by response number); a groups run adds
    "groups": the memories scored exactly and those whose own call failed
    (between them the records' memories; a failed one's records are failed),
    and those scored only with their group (no records: unknown, not zero)."""
    found = {
        "run": run.pk, "mode": run.mode, "status": run.status, "status_label": run.get_status_display(),
        "agent": run.agent.name,
        "snapshot": {"id": run.snapshot_id, "taken_at": run.snapshot.taken_at.isoformat()},
        "kind": kind(run), "units": UNITS,
        "states": {name: STATES[name] for name in _states_of(run)},
        "columns": COLUMNS,
    }
    if found["kind"] == "estimate":
        info = estimate_info(run)
        # result["fit_r2"] holds one R² per response of the snapshot, in conversation order: response #1, #2, …
        info["fit_r2"] = {str(number): r2 for number, r2 in enumerate(info["fit_r2"] or [], start=1)}
        found["estimate"] = info
    if run.mode == Mode.GROUPS:
        # Only the memories left out alone have cells; the others were left out with their group only.
        result = run.result or {}
        found["groups"] = {"exact_memories": result.get("exact_memories"),
                           "failed_memories": result.get("failed_memories", []),
                           "group_only": result.get("group_only")}
    return found


def _states_of(run):
    """The states a run's records can have: an estimate's values are "estimated", an exact run's "scored"."""
    value = ESTIMATED if kind(run) == "estimate" else SCORED
    return [value, UNAFFECTED, FAILED, MISSING, NOT_IN_RUN]


def estimate_info(run):
    """What an estimate's cells rest on: K, the seed, calls fitted, each response's held-out R²."""
    result = run.result or {}
    return {
        "ablations": run.params.get("ablations"), "seed": run.params.get("seed"),
        "calls_used": result.get("calls_used"), "exact_calls": result.get("exact_calls"),
        "r2_median": result.get("r2_median"), "fit_r2": result.get("fit_r2"),
    }


def filename(run, extension):
    """The download's name, with the run's status in it (e.g.
    "memscore-run-7-poc-cancelled-cells.csv"): a CSV has no room to say that
    a partial, cancelled or running run's cells are not all there."""
    return f"memscore-run-{run.pk}-{run.agent.name}-{run.status}-cells.{extension}"


class _Echo:
    """A file-like object whose write returns the line: csv.writer then yields
    each row as text instead of buffering it."""

    def write(self, value):
        return value


def _csv_text(value):
    # A key starting with = + - @ would run as a formula in a spreadsheet.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
