"""Candidates: the list (with bulk review), one candidate's page (its contexts
in views/candidate_page.py), the JSONL export.

What reviewers do on the page (decide, comment, edit) is in views/review.py.
"""

from collections import Counter, defaultdict

from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from scoring import exporting
from scoring.access import get_candidate_for_user, require_perm
from scoring.filters import (
    AgentOnlyFilter,
    CandidateFilter,
    agent_choices,
    agent_named,
    filter_notice,
    filter_problems,
    filtered,
    typed_choices,
    typed_values,
    unread,
)
from scoring.models import Candidate, Review
from scoring.models.candidates import blind_to, edit_shown_to
from scoring.models.review import OPINIONS
from scoring.roles import holds_candidates

from .candidate_page import TEMPLATE, decisions_context, page_context


def agent_filter(request):
    """The agent named by ?agent= (its id or name), or None for all agents."""
    return agent_named(request.GET.get("agent") or request.POST.get("agent") or "")


# --- pages ------------------------------------------------------------------

def candidate_list(request):
    require_perm(request, "scoring.view_candidate")
    candidates = Candidate.objects.select_related("agent", "reserved_by").only(
        "id", "agent__name", "agent__required_approvals", "agent__rejections_to_settle", "agent__blind_review",
        "divergence", "status", "edited_at", "edited_by", "reserved_by__username", "reserved_until", "response_text",
    )
    filterset = CandidateFilter(request.GET or None, queryset=candidates)
    rows = filtered(filterset)
    page = Paginator(rows.order_by("-divergence", "id"), 50).get_page(request.GET.get("page"))
    page.object_list = with_decision_counts(list(page.object_list), request.user)
    can_review = request.user.has_perm("scoring.review_candidate")
    selected = typed_values(filterset)
    found_by = filterset.form.cleaned_data.get("run") if filterset.is_bound else None
    found_in = filterset.form.cleaned_data.get("snapshot") if filterset.is_bound else None
    return render(
        request,
        "scoring/candidate_list.html",
        {
            "page": page,
            "form": filterset.form,
            "agent_choices": agent_choices(selected["agent"]),
            "statuses": typed_choices(Candidate.Status.choices, selected["status"]),
            "selected": selected,
            "filtered": any(selected.values()),
            # The run named, once it is a run's (an unknown one is among the problems).
            "found_by_run": found_by.pk if found_by else "",
            "found_in_snapshot": found_in.pk if found_in else "",
            "unread": unread(filterset),
            **filter_notice(request, filterset),
            # The list's counts, as the snapshot page's Candidates button says them.
            "awaiting_review": rows.pending().count(),
            # "Yours" is the queue's: members of the reviewer role (roles.holds_candidates).
            "awaiting_yours": rows.reviewable_by(request.user).count() if holds_candidates(request.user) else None,
            "can_review": can_review,
            "now": timezone.now(),
        },
    )


def with_decision_counts(candidates, user):
    """Each candidate with its approvals and rejections counted (None where
    blind review hides them from `user`, as it hides another's edit: `edit_shown`),
    for this page's candidates only: counting in the page query would group
    every candidate's row."""
    counts = defaultdict(Counter)
    mine = set()
    by_pk = {c.pk: c for c in candidates}
    rows = Review.objects.filter(candidate__in=list(by_pk), decision__in=OPINIONS)
    for candidate_id, reviewer_id, decision, approved_edit in rows.values_list(
        "candidate", "reviewer", "decision", "approved_edit"
    ):
        # An approval of an earlier text than the one to be trained is not counted.
        if decision == Review.Decision.REJECT or by_pk[candidate_id].counts_toward((decision, approved_edit)):
            counts[candidate_id][decision] += 1
        if reviewer_id == user.pk:
            mine.add(candidate_id)
    for c in candidates:
        hidden = blind_to(user, c, Review.Decision.APPROVE if c.pk in mine else None)
        c.approvals = None if hidden else counts[c.pk][Review.Decision.APPROVE]
        c.rejections = None if hidden else counts[c.pk][Review.Decision.REJECT]
        c.edit_shown = edit_shown_to(user, c, hidden)
    return candidates


def candidate_detail(request, pk):
    candidate = get_candidate_for_user(request, pk)
    if request.htmx:
        # The decisions panel polls this, so reviewers see each other's decisions.
        return render(request, f"{TEMPLATE}#decisions", decisions_context(request, candidate))
    return render(request, TEMPLATE, page_context(request, candidate))


def candidate_export(request):
    """Approved and trained samples as JSON lines, with where each came from.
    An agent that cannot apply is a 400 naming it, never every agent's samples."""
    require_perm(request, "scoring.view_candidate")
    filterset = AgentOnlyFilter(request.GET or None)
    problems = filter_problems(filterset)
    if problems:
        said = "\n".join(["Nothing exported: a filter cannot be applied.", *problems])
        return HttpResponseBadRequest(said + "\n", content_type="text/plain; charset=utf-8")
    agent = filterset.form.cleaned_data.get("agent") if filterset.is_bound else None
    candidates = exporting.approved_samples(agent)

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
