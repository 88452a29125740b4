"""The heatmap's data as one compact JSON payload, packed for 500 × 2,000 cells.

Flat row-major integers in thousandths, keys and response snippets once;
gzipped and cached once the run has finished (its cells can no longer
change). A worker warms it when a full run ends, so even the first view
of a big heatmap is served from the cache.
"""

import gzip
import json
import logging

import numpy as np
from django.core.cache import cache

from scoring.heatmap.export import estimate_info, kind
from scoring.heatmap.matrix import MISSING, NOT_IN_RUN, UNAFFECTED, load_matrix_states
from scoring.maths import HARMFUL_NATS, ZERO_THRESHOLD

SNIPPET_CHARS = 80
# Values travel as integers in thousandths of a nat: shorter than floats,
# exact after the 3-decimal rounding, and cheap to parse.
UNIT = 0.001
CACHE_SECONDS = 7 * 24 * 3600

log = logging.getLogger(__name__)


def cached_payload(run):
    """A finished run's payload, gzipped, from the cache or packed and cached now.

    Reading a million cells takes seconds; whoever finishes a run may call
    this so that even the first visit finds the payload ready.
    """
    return through_cache(cache_key(run), lambda: gzip.compress(pack(run), compresslevel=5))


def through_cache(key, compute, seconds=CACHE_SECONDS):
    """compute()'s value, kept in the shared cache under `key`.

    The cache only saves time: when it cannot be reached (Redis down), the
    value is computed from the database, slower but never an error.
    """
    try:
        found = cache.get(key)
    except Exception:
        log.warning("the cache cannot be reached; computing %s from the database", key, exc_info=True)
        return compute()
    if found is None:
        found = compute()
        try:
            cache.set(key, found, seconds)
        except Exception:
            log.warning("the cache cannot be reached; %s is not kept", key, exc_info=True)
    return found


def cache_key(run):
    # Changes with anything that could change a finished run's cells (a
    # resumed or re-finished run), so a stale payload is never served. v4:
    # "unaffected" added, so payloads cached before are not reused ("kind" needs
    # no new version: a payload cached without it is an exact run's). v5: an
    # incremental run's cells before a memory's window are "unaffected". v6:
    # they stay so when its call failed. v7: "not_in_run" apart from
    # "missing", and a cancelled run's cells before a memory "unaffected".
    # v8: the agent's name (the PNG's file name).
    finished = int(run.finished_at.timestamp() * 1e6) if run.finished_at else 0
    return f"heatmap-v8-{run.pk}-{run.status}-{run.calls_done}-{run.calls_failed}-{finished}"


def pack(run):
    """The heatmap's JSON payload as bytes."""
    memories, responses, deltas, states = load_matrix_states(run)
    rows, cols = deltas.shape
    deltas, states = deltas.reshape(rows * cols), states.reshape(rows * cols)
    unknown = np.isnan(deltas)
    values = np.rint(np.where(unknown, 0.0, deltas) / UNIT).astype(np.int64).tolist()
    for i in np.flatnonzero(unknown).tolist():
        values[i] = None

    payload = {
        "run": run.pk,
        # For the PNG's file name, which says what the exports' names say (export.filename).
        "agent": run.agent.name,
        "status": run.status,
        "status_label": run.get_status_display(),
        "active": run.is_active,
        # "estimate": the cells are fitted to random ablations (the estimate
        # mode), never exact deltas; "estimate" then says K and the fit's R².
        "kind": kind(run),
        "rows": rows,
        "cols": cols,
        "unit": UNIT,
        # The thresholds heatmap.js colours with (mirroring scoring.maths).
        "zero": ZERO_THRESHOLD,
        "harm": HARMFUL_NATS,
        "memory_ids": [m["id"] for m in memories],
        "keys": [m["key"] for m in memories],
        "response_ids": [r["id"] for r in responses],
        # Column j is response #response_number[j] (the k-th assistant
        # response), conversation entry response_index[j]: docs/scoring.md.
        "response_number": [r["number"] for r in responses],
        "response_index": [r["index"] for r in responses],
        "snippets": [_snippet(r["text"]) for r in responses],
        # Signed deltas in thousandths, row-major (memory by memory);
        # null = no value: failed, or not scored yet when listed in "missing".
        "values": values,
        # [flat start, length] runs of cells not scored (yet, or ever: a
        # cancelled run's), and of those outside every window the run scored
        # their memory over (an incremental run's): drawn apart, as the
        # exports name them apart.
        "missing": _runs(states == MISSING),
        "not_in_run": _runs(states == NOT_IN_RUN),
        # [flat start, length] runs of cells before their memory's first
        # appearance: exactly 0 (their value), never asked of the server.
        "unaffected": _runs(states == UNAFFECTED),
    }
    if payload["kind"] == "estimate":
        payload["estimate"] = estimate_info(run)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _runs(mask):
    """[[start, length], ...] of the True stretches of a boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0]))))
    return [[int(start), int(end - start)] for start, end in zip(edges[::2], edges[1::2])]


def _snippet(text):
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


