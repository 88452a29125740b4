"""The home page: what waits for me, what runs, what training did, what happened.

Each panel is shown to those whose role may see it; the navigation's count of
my pending reviews is views/context_processors.py. /favicon.ico is answered
here too, as every browser asks for it.
"""

from django.contrib.auth.decorators import login_not_required
from django.db.models import Count
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import path
from django.views.decorators.http import require_GET

from scoring.engine.rescore import samples_with_rescore, training_effect
from scoring.models import Candidate, ScoringRun, TrainJob
from scoring.models.runs import label_origins
from scoring.roles import holds_candidates

from .activity import describe, visible_to

RUNS_SHOWN = 10
JOBS_SHOWN = 5
ACTIVITY_SHOWN = 12


def home(request):
    user = request.user
    # "For you" is the queue's: it holds candidates for members of the
    # reviewer role only (an operator may decide, and sees what awaits review).
    context = {"can_review": holds_candidates(user)}
    if user.has_perm("scoring.view_candidate"):
        context.update(review_panel(user))
    if user.has_perm("scoring.view_scoringrun"):
        runs = ScoringRun.objects.active().select_related("agent", "created_by").order_by("created_at")
        context["runs"] = label_origins(runs[:RUNS_SHOWN])
    if user.has_perm("scoring.view_trainjob"):
        context["jobs"] = recent_jobs()
    if user.has_perm("scoring.view_activity"):
        context["activity"] = describe(visible_to(user)[:ACTIVITY_SHOWN])
    return render(request, "scoring/home.html", context)


def review_panel(user):
    """Candidates awaiting review per agent, and how many of them wait for `user`."""
    pending = dict(
        Candidate.objects.pending().values("agent__name").annotate(n=Count("id")).values_list("agent__name", "n")
    )
    mine = {}
    if holds_candidates(user):
        mine = {
            row["agent__name"]: row
            for row in Candidate.objects.reviewable_by(user).values("agent_id", "agent__name").annotate(n=Count("id"))
        }
    agents = sorted(set(pending) | set(mine))
    rows = [
        {
            "name": name,
            "agent_id": mine[name]["agent_id"] if name in mine else None,
            "mine": mine[name]["n"] if name in mine else 0,
            "pending": pending.get(name, 0),
        }
        for name in agents
    ]
    return {"review_rows": rows, "mine_total": sum(r["mine"] for r in rows)}


def recent_jobs():
    """The latest training jobs, each with its effect: the samples' mean
    divergence before, and after the latest finished re-score (None until one)."""
    jobs = list(TrainJob.objects.select_related("agent", "created_by").annotate(n_samples=Count("samples"))
                .order_by("-created_at")[:JOBS_SHOWN])
    for job in jobs:
        job.effect = None
        if job.status == TrainJob.Status.SUCCEEDED:
            job.effect = training_effect(samples_with_rescore(job))
    return jobs


@login_not_required
@require_GET
def favicon(request):
    # Browsers ask for /favicon.ico before any page names its icon.
    return redirect(static("memscore/favicon.svg"), permanent=True)


urlpatterns = [
    path("", home, name="home"),
    path("favicon.ico", favicon, name="favicon"),
]
