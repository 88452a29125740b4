"""Comparing two full runs of one agent: per memory, its importance in each
and the change (scoring.heatmap.compare), e.g. before and after training.

`runs/<pk>/compare/` lists the runs this one can be compared with;
`runs/<before>/compare/<after>/` is the comparison, after minus before.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path

from scoring import maths
from scoring.access import get_run_for_user, require_perm
from scoring.heatmap.compare import SORTS, compare
from scoring.models import ScoringRun, TrainJob
from scoring.models.runs import Mode, RunStatus

FINISHED = [RunStatus.SUCCEEDED, RunStatus.PARTIAL]


def _get_comparable_run(request, pk):
    """A finished full run the user may see with its cells (404 / 403 otherwise)."""
    run = get_run_for_user(request, pk)
    require_perm(request, "scoring.view_cellscore")
    if run.mode != Mode.FULL or run.status not in FINISHED:
        raise Http404("Only finished full-matrix runs can be compared.")
    return run


def compare_choose(request, pk):
    run = _get_comparable_run(request, pk)
    others = (
        ScoringRun.objects.filter(agent_id=run.agent_id, mode=Mode.FULL, status__in=FINISHED)
        .exclude(pk=run.pk)
        .select_related("snapshot")
        .order_by("-finished_at", "-id")[:50]
    )
    # The earlier run goes first, so the change reads "later minus earlier".
    choices = [(other, (other, run) if _earlier(other, run) else (run, other)) for other in others]
    return render(request, "scoring/run_compare.html", {"run": run, "choices": choices, "rows": None})


def compare_runs(request, before, after):
    first = _get_comparable_run(request, before)
    second = _get_comparable_run(request, after)
    if first.agent_id != second.agent_id or first.pk == second.pk:
        # Said on the chooser of the first run, not as a "page not found": both runs exist.
        why = (f"{first} cannot be compared with itself." if first.pk == second.pk else
               f"Only runs of one agent can be compared: {first} is {first.agent.name}'s, {second} is "
               f"{second.agent.name}'s. Choose one of {first.agent.name}'s runs below.")
        messages.error(request, why)
        return redirect("run_compare_choose", first.pk)
    sort = request.GET.get("sort", "abs")
    sort = sort if sort in SORTS else "abs"
    rows = compare(first, second, sort)
    return render(
        request,
        "scoring/run_compare.html",
        {
            "run": first,
            "before": first,
            "after": second,
            "rows": rows,
            "sort": sort,
            "sorts": SORTS,
            "changed": sum(1 for r in rows if r["change_sum"] is not None),
            "texts_changed": sum(1 for r in rows if r["text_changed"]),
            # Training between the two runs changes every memory's numbers.
            "trained_between": TrainJob.objects.succeeded_after(first.agent_id, first.started_at or first.created_at)
            .filter(finished_at__lt=second.started_at or second.created_at).order_by("finished_at"),
            "zero_threshold": maths.ZERO_THRESHOLD,
        },
    )


def _earlier(a, b):
    return (a.finished_at, a.pk) < (b.finished_at, b.pk)


urlpatterns = [
    path("runs/<int:pk>/compare/", compare_choose, name="run_compare_choose"),
    path("runs/<int:before>/compare/<int:after>/", compare_runs, name="run_compare"),
]
