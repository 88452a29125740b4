"""A run's cells as one export: the same bytes from the heatmap page's
download and from `manage.py export_matrix`.

Long format, one record per (memory, response) cell, columns COLUMNS:
the signed delta as measured, its importance (maths.cell_importance), and
its state: "scored", "unaffected" (before the memory's first appearance:
exactly zero, not asked of the server), "failed" (the score call failed: no
value, never zero), "missing" (not scored yet: its call has not finished, or
never will in a cancelled run) or "not_in_run" (outside every window the run
scored its memory over: an incremental run scores each memory over its own
responses, so the rest of its row is never scored; no value, never zero); and
its kind: "exact"
(leave-one-out) or "estimate" (fitted to random ablations, the estimate
mode: never to be read as an exact delta). docs/scoring.md ("Exports")
describes it.
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
NOT_IN_RUN = "not_in_run"
STATE_NAMES = {matrix.SCORED: SCORED, matrix.UNAFFECTED: UNAFFECTED, matrix.FAILED: FAILED, matrix.MISSING: MISSING,
               matrix.NOT_IN_RUN: NOT_IN_RUN}


def kind(run):
    """"estimate" for a run whose cells are fitted (the estimate mode), else "exact"."""
    return "estimate" if run.mode == Mode.ESTIMATE else "exact"


def cells(run):
    """The run's cells as dicts keyed by COLUMNS, memory by memory, responses
    in conversation order; delta and importance are None unless scored or
    unaffected (0)."""
    memories, responses, deltas, states = matrix.load_matrix_states(run)
    cell_kind = kind(run)
    for i, memory in enumerate(memories):
        for j, response in enumerate(responses):
            delta = float(deltas[i, j])
            state = STATE_NAMES[int(states[i, j])]
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
    """The same records as one JSON document, in pieces for streaming:
    {"run": id, "kind": ..., "columns": COLUMNS, "cells": [{column: value}, ...]},
    with null for a delta or importance that has no value; an estimate adds
    "estimate": its K, seed and per-response held-out R² (fit_r2); a groups
    run adds "groups": the memories scored exactly and those whose own call
    failed (between them the records' memories; a failed one's records are
    failed), and those scored only with their group (no records: unknown,
    not zero)."""
    head = {"run": run.pk, "kind": kind(run), "columns": COLUMNS}
    if head["kind"] == "estimate":
        head["estimate"] = estimate_info(run)
    if run.mode == Mode.GROUPS:
        # Only the memories left out alone have cells; the others were left out with their group only.
        result = run.result or {}
        head["groups"] = {"exact_memories": result.get("exact_memories"),
                          "failed_memories": result.get("failed_memories", []), "group_only": result.get("group_only")}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ',"cells":['
    for n, cell in enumerate(cells(run)):
        yield ("," if n else "") + "\n" + json.dumps(cell, ensure_ascii=False, separators=(",", ":"))
    yield "\n]}\n"


def estimate_info(run):
    """What an estimate's cells rest on: K, the seed, calls fitted, each response's held-out R²."""
    result = run.result or {}
    return {
        "ablations": run.params.get("ablations"), "seed": run.params.get("seed"),
        "calls_used": result.get("calls_used"), "exact_calls": result.get("exact_calls"),
        "r2_median": result.get("r2_median"), "fit_r2": result.get("fit_r2"),
    }


def filename(run, extension):
    return f"memscore-run-{run.pk}-{run.agent.name}-cells.{extension}"


class _Echo:
    """A file-like object whose write returns the line: csv.writer then yields
    each row as text instead of buffering it."""

    def write(self, value):
        return value


def _csv_text(value):
    # A key starting with = + - @ would run as a formula in a spreadsheet.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
