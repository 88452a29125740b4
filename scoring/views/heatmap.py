"""A run's memories × responses heatmap: the page, its data, a CSV and one cell.

The page is a shell; static/memscore/heatmap.js fetches `heatmap_data` and
draws every cell on one canvas. The data is scoring.heatmap.payload's packed
JSON, read through scoring.heatmap.matrix; every threshold is scoring.maths's.
"""

import gzip

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import condition

from scoring import maths, modes
from scoring.access import get_run_for_user, require_perm
from scoring.heatmap import export
from scoring.heatmap.matrix import never_scored_unaffected, response_numbers, window_states
from scoring.heatmap.payload import cache_key, cached_payload, pack
from scoring.models import CellScore, Memory, Node, ScoreCall


def _get_heatmap_run(request, pk):
    """The run, if the user may see it and its cells (404 / 403 otherwise);
    404 too for a run whose mode has no heatmap (fine-tune: candidates)."""
    run = get_run_for_user(request, pk)
    require_perm(request, "scoring.view_cellscore")
    if not modes.get(run.mode).has_heatmap:
        raise Http404(f"Run #{run.pk} ({run.get_mode_display()}) has no heatmap.")
    return run


def heatmap(request, pk):
    run = get_run_for_user(request, pk)
    if not modes.get(run.mode).has_heatmap:
        # Said on the run's own page, not as an empty matrix with downloads.
        what = " its findings are candidates for review," if run.mode == "finetune" else ""
        messages.info(request, f"Run #{run.pk} ({run.get_mode_display()}) has no heatmap:{what} "
                               "this mode scores no memory × response cells.")
        return redirect("run_detail", run.pk)
    run = _get_heatmap_run(request, pk)
    cell_url = reverse("heatmap_cell", args=[run.pk, 0, 0])
    return render(
        request,
        "scoring/heatmap.html",
        {
            "run": run,
            "data_url": reverse("heatmap_data", args=[run.pk]),
            # heatmap.js appends "<memory_id>/<response_id>/".
            "cell_base_url": cell_url[: -len("0/0/")],
            "zero_threshold": maths.ZERO_THRESHOLD,
            "harmful_nats": maths.HARMFUL_NATS,
            "memory_count": run.snapshot.memory_count,
            "response_count": run.snapshot.response_count,
        },
    )


def heatmap_data(request, pk):
    run = _get_heatmap_run(request, pk)
    if run.is_active:
        # An active run's cells change every second: always fresh, never
        # stored, no ETag.
        response = HttpResponse(pack(run), content_type="application/json")
        response["Cache-Control"] = "no-store"
        return response
    response = _finished_payload(request, run)
    # On the 304s too: browsers keep it but ask again each time (a cheap 304
    # while it holds).
    response["Cache-Control"] = "private, no-cache"
    response["Vary"] = "Accept-Encoding, Cookie"
    return response


@condition(etag_func=lambda request, run: cache_key(run))
def _finished_payload(request, run):
    """A finished run's payload, gzipped when the browser takes it (a 304 from
    condition() when its ETag, the cache key, still matches)."""
    compressed = cached_payload(run)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = HttpResponse(compressed, content_type="application/json")
        response["Content-Encoding"] = "gzip"
        return response
    return HttpResponse(gzip.decompress(compressed), content_type="application/json")


def heatmap_csv(request, pk):
    run = _get_heatmap_run(request, pk)
    return _download(export.csv_lines(run), "text/csv; charset=utf-8", export.filename(run, "csv"))


def heatmap_cells_json(request, pk):
    run = _get_heatmap_run(request, pk)
    return _download(export.json_chunks(run), "application/json", export.filename(run, "json"))


def _download(chunks, content_type, filename):
    """The export streamed as an attachment: the same bytes `manage.py
    export_matrix` writes (scoring.heatmap.export)."""
    response = StreamingHttpResponse((chunk.encode() for chunk in chunks), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def heatmap_cell(request, pk, memory_id, response_id):
    run = _get_heatmap_run(request, pk)
    memory = Memory.objects.filter(agent_id=run.agent_id, pk=memory_id).first()
    response = Node.objects.responses().filter(snapshot_id=run.snapshot_id, pk=response_id).first()
    if memory is None or response is None:
        raise Http404("No such cell in this run's snapshot.")
    # The memory's text as this snapshot had it (it may have changed since).
    memory_node = (
        Node.objects.filter(snapshot_id=run.snapshot_id, memory=memory).in_context_order().first()
    )
    cell = CellScore.objects.filter(run=run, memory_id=memory_id, response_id=response_id).first()
    # A cell with no row: its memory's windows say why (matrix.window_states).
    state = cell.state if cell is not None else export.STATE_NAMES.get(
        int(window_states(run, [memory.pk], [response.index])[0, 0]), export.MISSING)
    if state == export.MISSING and not run.is_active and never_scored_unaffected(
            run, [{"id": memory.pk}], [{"id": response.pk}])[0, 0]:
        state = export.UNAFFECTED  # a cancelled run's cell before its memory, as the exports say
    estimate = export.kind(run) == "estimate"
    if state == export.SCORED and estimate:
        state = export.ESTIMATED  # fitted, not measured (the exports' word)
    call_error = ""
    if state == "failed":
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
        "response_number": response_numbers(run.snapshot_id, [response.index])[response.index],
        "cell": cell,
        "state": state,
        "call_error": call_error,
        # A failed cell's delta is None: no importance, neither flag.
        "importance": maths.cell_importance(cell.delta) if cell is not None else None,
        "harmful": cell is not None and maths.is_harmful(cell.delta),
        "better_without": cell is not None and maths.is_better_without(cell.delta),
        "harmful_nats": maths.HARMFUL_NATS,
        "estimate": estimate,
    }
    template = "scoring/heatmap_cell.html"
    if request.htmx:
        template += "#cell"
    return render(request, template, context)


urlpatterns = [
    path("runs/<int:pk>/heatmap/", heatmap, name="heatmap"),
    path("runs/<int:pk>/heatmap.json", heatmap_data, name="heatmap_data"),
    path("runs/<int:pk>/heatmap.csv", heatmap_csv, name="heatmap_csv"),
    path("runs/<int:pk>/cells.json", heatmap_cells_json, name="heatmap_cells_json"),
    path("runs/<int:pk>/cell/<int:memory_id>/<int:response_id>/", heatmap_cell, name="heatmap_cell"),
]
