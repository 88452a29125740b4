"""How reviewers agree: per pair and per reviewer, with Cohen's kappa and the
candidates a pair disagreed on (scoring.models.review.agreement)."""

from django.shortcuts import render
from django.urls import path

from scoring.access import require_perm
from scoring.filters import AgentOnlyFilter, agent_choices, filter_notice, filter_problems, typed_values
from scoring.models import Candidate, Review
from scoring.models.candidates import hidden_from
from scoring.models.review import OPINIONS, agreement

# Disagreements listed per pair; the count says how many there are in all.
DISAGREEMENTS_SHOWN = 50


def review_agreement(request):
    require_perm(request, "scoring.view_review")
    # An agent that cannot be found compares nothing (scoring.filters' rule), never every agent.
    filterset = AgentOnlyFilter(request.GET or None)
    problems = filter_problems(filterset)
    agent = filterset.form.cleaned_data.get("agent") if filterset.is_bound and not problems else None
    reviews = visible_opinions(request.user, agent)
    if problems:
        reviews = reviews.none()
    pairs, reviewers = agreement(reviews.values_list("candidate_id", "reviewer__username", "decision"))
    divergences = dict(
        Candidate.objects.filter(pk__in={c for p in pairs for c, _, _ in p.disagreements[:DISAGREEMENTS_SHOWN]})
        .values_list("pk", "divergence")
    )
    for pair in pairs:
        pair.shown = [
            {"candidate": c, "first": a, "second": b, "divergence": divergences.get(c)}
            for c, a, b in pair.disagreements[:DISAGREEMENTS_SHOWN]
        ]
    typed = typed_values(filterset)["agent"]
    return render(request, "scoring/review_agreement.html", {
        "agent": agent,
        # The agent select keeps what was typed, known or not.
        "agent_choices": agent_choices(typed),
        "selected": typed,
        "pairs": pairs,
        "reviewers": reviewers,
        **filter_notice(request, filterset),
    })


def visible_opinions(user, agent=None):
    """Approvals and rejections this user may see compared: none on a
    candidate whose others' decisions blind review hides from them."""
    reviews = Review.objects.filter(decision__in=OPINIONS)
    hidden = hidden_from(user)
    if hidden is not None:
        reviews = reviews.exclude(candidate__in=hidden)
    if agent is not None:
        reviews = reviews.filter(candidate__agent=agent)
    return reviews.order_by("candidate_id", "reviewer__username")


urlpatterns = [path("review/agreement/", review_agreement, name="review_agreement")]
