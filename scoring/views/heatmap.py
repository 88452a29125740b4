"""A run's memories × responses heatmap: the page, its data, a CSV and one cell.

The page is a shell; static/memscore/heatmap.js fetches `heatmap_data` and
draws every cell on one canvas. The payload is packed for 500 × 2,000 cells:
flat row-major integers in thousandths, keys and response snippets once,
gzipped and cached once the run has finished (its cells can no longer change).
"""

import csv
import gzip
import json

import numpy as np

from django.core.cache import cache
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path, reverse

from scoring.access import get_run_for_user, require_perm
from scoring.engine.matrix import load_matrix
from scoring.models import CellScore, Memory, Node, ScoreCall
from scoring.models.runs import HARMFUL_DELTA, ZERO_THRESHOLD

SNIPPET_CHARS = 80
# Values travel as integers in thousandths of a nat: shorter than floats,
# exact after the 3-decimal rounding, and cheap to parse.
UNIT = 0.001
CACHE_SECONDS = 24 * 3600


def heatmap(request, pk):
    run = get_run_for_user(request, pk)
    require_perm(request, "scoring.view_cellscore")
    cell_url = reverse("heatmap_cell", args=[run.pk, 0, 0])
    return render(
        request,
        "scoring/heatmap.html",
        {
            "run": run,
            "data_url": reverse("heatmap_data", args=[run.pk]),
            # heatmap.js appends "<memory_id>/<response_id>/".
            "cell_base_url": cell_url[: -len("0/0/")],
            "zero_threshold": ZERO_THRESHOLD,
            "harmful_delta": HARMFUL_DELTA,
            "memory_count": run.snapshot.memory_count,
            "response_count": run.snapshot.response_count,
        },
    )


def heatmap_data(request, pk):
    run = get_run_for_user(request, pk)
    require_perm(request, "scoring.view_cellscore")
    if run.is_active:
        # An active run's cells change every second: always fresh, never stored.
        response = HttpResponse(pack(run), content_type="application/json")
        response["Cache-Control"] = "no-store"
        return response

    key = _cache_key(run)
    etag = f'"{key}"'
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        compressed = cached_payload(run)
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response = HttpResponse(compressed, content_type="application/json")
            response["Content-Encoding"] = "gzip"
        else:
            response = HttpResponse(gzip.decompress(compressed), content_type="application/json")
    # Browsers keep it but ask again each time (a cheap 304 while it holds).
    response["Cache-Control"] = "private, no-cache"
    response["ETag"] = etag
    response["Vary"] = "Accept-Encoding, Cookie"
    return response


def cached_payload(run):
    """A finished run's payload, gzipped, from the cache or packed and cached now.

    Reading a million cells takes seconds; whoever finishes a run may call
    this so that even the first visit finds the payload ready.
    """
    key = _cache_key(run)
    compressed = cache.get(key)
    if compressed is None:
        compressed = gzip.compress(pack(run), compresslevel=5)
        cache.set(key, compressed, CACHE_SECONDS)
    return compressed


def _cache_key(run):
    # Changes with anything that could change a finished run's cells (a
    # resumed or re-finished run), so a stale payload is never served.
    finished = int(run.finished_at.timestamp() * 1e6) if run.finished_at else 0
    return f"heatmap-v1-{run.pk}-{run.status}-{run.calls_done}-{run.calls_failed}-{finished}"


def pack(run):
    """The heatmap's JSON payload as bytes."""
    matrix = load_matrix(run)
    memories, responses = matrix["memories"], matrix["responses"]
    rows, cols = len(memories), len(responses)
    # None (failed or not scored) becomes NaN; everything else is vectorised.
    deltas = np.array(matrix["deltas"], dtype=np.float64).reshape(rows * cols)
    unknown = np.isnan(deltas)

    # load_matrix gives None for failed and for not-yet-scored cells alike;
    # failed cells are stored as such and few, so they are read apart.
    row_of = {m["id"]: i for i, m in enumerate(memories)}
    col_of = {r["id"]: j for j, r in enumerate(responses)}
    failed = np.zeros(rows * cols, dtype=bool)
    for memory_id, response_id in CellScore.objects.filter(run=run, failed=True).values_list(
        "memory_id", "response_id"
    ):
        if memory_id in row_of and response_id in col_of:
            failed[row_of[memory_id] * cols + col_of[response_id]] = True

    values = np.rint(np.where(unknown, 0.0, deltas) / UNIT).astype(np.int64).tolist()
    for i in np.flatnonzero(unknown).tolist():
        values[i] = None

    payload = {
        "run": run.pk,
        "status": run.status,
        "active": run.is_active,
        "rows": rows,
        "cols": cols,
        "unit": UNIT,
        "zero": ZERO_THRESHOLD,
        "harm": HARMFUL_DELTA,
        "memory_ids": [m["id"] for m in memories],
        "keys": [m["key"] for m in memories],
        "response_ids": [r["id"] for r in responses],
        "response_index": [r["index"] for r in responses],
        "snippets": [_snippet(r["text"]) for r in responses],
        # Signed deltas in thousandths, row-major (memory by memory);
        # null = no value: failed, or not scored yet when listed in "missing".
        "values": values,
        # [flat start, length] runs of cells not scored yet.
        "missing": _runs(unknown & ~failed),
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _runs(mask):
    """[[start, length], ...] of the True stretches of a boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0]))))
    return [[int(start), int(end - start)] for start, end in zip(edges[::2], edges[1::2])]


def _snippet(text):
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


def heatmap_csv(request, pk):
    run = get_run_for_user(request, pk)
    require_perm(request, "scoring.view_cellscore")
    matrix = load_matrix(run)
    failed = set(
        CellScore.objects.filter(run=run, failed=True).values_list("memory_id", "response_id")
    )

    def rows():
        writer = csv.writer(_Echo())
        yield writer.writerow(
            ["memory_id", "memory_key", "response_id", "response_index", "delta", "importance", "state"]
        )
        for memory, row in zip(matrix["memories"], matrix["deltas"]):
            for response, delta in zip(matrix["responses"], row):
                if delta is not None:
                    importance = delta if delta > ZERO_THRESHOLD else 0.0
                    state = "scored"
                    cells = [f"{delta:.6g}", f"{importance:.6g}"]
                else:
                    state = "failed" if (memory["id"], response["id"]) in failed else "missing"
                    cells = ["", ""]
                yield writer.writerow(
                    [memory["id"], _csv_text(memory["key"]), response["id"], response["index"], *cells, state]
                )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    filename = f"memscore-run-{run.pk}-{run.agent.name}-cells.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class _Echo:
    def write(self, value):
        return value


def _csv_text(value):
    # A key starting with = + - @ would run as a formula in a spreadsheet.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def heatmap_cell(request, pk, memory_id, response_id):
    run = get_run_for_user(request, pk)
    require_perm(request, "scoring.view_cellscore")
    memory = Memory.objects.filter(agent_id=run.agent_id, pk=memory_id).first()
    response = Node.objects.responses().filter(snapshot_id=run.snapshot_id, pk=response_id).first()
    if memory is None or response is None:
        raise Http404("No such cell in this run's snapshot.")
    # The memory's text as this snapshot had it (it may have changed since).
    memory_node = (
        Node.objects.filter(snapshot_id=run.snapshot_id, memory=memory).order_by("section", "index").first()
    )
    cell = CellScore.objects.filter(run=run, memory_id=memory_id, response_id=response_id).first()
    call_error = ""
    if cell is not None and cell.failed:
        call = (
            ScoreCall.objects.filter(run=run, memory_id=memory_id, status=ScoreCall.Status.FAILED)
            .exclude(error="")
            .first()
        )
        call_error = call.error if call else ""
    context = {
        "run": run,
        "memory": memory,
        "memory_text": memory_node.text if memory_node else memory.text,
        "memory_node": memory_node,
        "response": response,
        "cell": cell,
        "call_error": call_error,
        "harmful": cell is not None and not cell.failed and cell.delta < -ZERO_THRESHOLD,
    }
    template = "scoring/heatmap_cell.html"
    if request.htmx:
        template += "#cell"
    return render(request, template, context)


urlpatterns = [
    path("runs/<int:pk>/heatmap/", heatmap, name="heatmap"),
    path("runs/<int:pk>/heatmap.json", heatmap_data, name="heatmap_data"),
    path("runs/<int:pk>/heatmap.csv", heatmap_csv, name="heatmap_csv"),
    path("runs/<int:pk>/cell/<int:memory_id>/<int:response_id>/", heatmap_cell, name="heatmap_cell"),
]
