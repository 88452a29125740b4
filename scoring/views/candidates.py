"""Candidates: the list (with bulk review), one candidate's page (its contexts
in views/candidate_page.py), the JSONL export.

What reviewers do on the page (decide, comment, edit) is in views/review.py.
"""

from collections import Counter, defaultdict

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from scoring import exporting
from scoring.access import get_candidate_for_user, require_perm
from scoring.filters import CandidateFilter, agent_named
from scoring.models import Agent, Candidate, Review
from scoring.models.candidates import blind_to
from scoring.models.review import OPINIONS

from .candidate_page import TEMPLATE, decisions_context, page_context

# The list's filters (CandidateFilter's), kept in its links and bulk actions.
FILTERS = ("agent", "status", "memory", "min_divergence", "max_divergence", "run")


def agent_filter(request):
    """The agent named by ?agent= (its id or name), or None for all agents."""
    return agent_named(request.GET.get("agent") or request.POST.get("agent") or "")


# --- pages ------------------------------------------------------------------

def candidate_list(request):
    require_perm(request, "scoring.view_candidate")
    candidates = Candidate.objects.select_related("agent", "reserved_by").only(
        "id", "agent__name", "agent__required_approvals", "agent__rejections_to_settle", "agent__blind_review",
        "divergence", "status", "edited_at", "reserved_by__username", "reserved_until", "response_text",
    )
    query = request.GET.copy()
    named = agent_named(query.get("agent", ""))
    if named is not None:
        query["agent"] = str(named.pk)  # ?agent= may name it, as the queue's does
    filterset = CandidateFilter(query or None, queryset=candidates)
    problems = filter_problems(request, filterset)
    # A filter that cannot apply matches nothing, rather than seeming to apply
    # while every candidate is listed.
    found = filterset.queryset.none() if problems else filterset.qs
    page = Paginator(found.order_by("-divergence", "id"), 50).get_page(request.GET.get("page"))
    page.object_list = with_decision_counts(list(page.object_list), request.user)
    return render(
        request,
        "scoring/candidate_list.html",
        {
            "page": page,
            "agent_choices": Agent.objects.values_list("id", "name"),
            "statuses": Candidate.Status.choices,
            "selected": {name: request.GET.get(name, "") for name in FILTERS},
            "filtered": any(request.GET.get(name) for name in FILTERS),
            # The run named, once it is a run's id (a bad one is among filter_problems).
            "found_by_run": request.GET.get("run") if filterset.is_bound and "run" not in filterset.errors else "",
            "filter_problems": problems,
            "can_review": request.user.has_perm("scoring.review_candidate"),
            "now": timezone.now(),
        },
    )


# The filters as the list's form names them.
FILTER_LABELS = {
    "agent": "Agent", "status": "Status", "memory": "Memory in its context",
    "min_divergence": "Divergence from", "max_divergence": "Divergence to", "run": "Found by run",
}


def filter_problems(request, filterset):
    """["Label: what is wrong", ...] for each filter of the query string that
    cannot apply: a value of the wrong kind, or an agent that does not exist."""
    if not filterset.is_bound:
        return []
    problems = [
        f"{FILTER_LABELS.get(name, name)}: {' '.join(errors)}"
        for name, errors in filterset.errors.items()
        if name != "agent"
    ]
    agent = request.GET.get("agent", "")
    if agent and agent_named(agent) is None:
        problems.insert(0, f"Agent: there is no agent “{agent}”.")
    return problems


def with_decision_counts(candidates, user):
    """Each candidate with its approvals and rejections counted (None where
    blind review hides them from `user`), for this page's candidates only:
    counting in the page query would group every candidate's row."""
    counts = defaultdict(Counter)
    mine = set()
    rows = Review.objects.filter(candidate__in=[c.pk for c in candidates], decision__in=OPINIONS)
    for candidate_id, reviewer_id, decision in rows.values_list("candidate", "reviewer", "decision"):
        counts[candidate_id][decision] += 1
        if reviewer_id == user.pk:
            mine.add(candidate_id)
    for c in candidates:
        hidden = blind_to(user, c, Review.Decision.APPROVE if c.pk in mine else None)
        c.approvals = None if hidden else counts[c.pk][Review.Decision.APPROVE]
        c.rejections = None if hidden else counts[c.pk][Review.Decision.REJECT]
    return candidates


def candidate_detail(request, pk):
    candidate = get_candidate_for_user(request, pk)
    if request.htmx:
        # The decisions panel polls this, so reviewers see each other's decisions.
        return render(request, f"{TEMPLATE}#decisions", decisions_context(request, candidate))
    return render(request, TEMPLATE, page_context(request, candidate))


def candidate_export(request):
    """Approved and trained samples as JSON lines, with where each came from."""
    require_perm(request, "scoring.view_candidate")
    agent = agent_filter(request)
    candidates = exporting.approved_samples(agent)
    if request.GET.get("agent") and agent is None:
        candidates = candidates.none()

    lines = exporting.jsonl_lines(candidates)
    response = StreamingHttpResponse(lines, content_type="application/jsonl; charset=utf-8")
    name = f"memscore-{agent.name if agent else 'all'}-samples.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


urlpatterns = [
    path("candidates/", candidate_list, name="candidate_list"),
    path("candidates/<int:pk>/", candidate_detail, name="candidate_detail"),
    path("candidates/export.jsonl", candidate_export, name="candidate_export"),
]
