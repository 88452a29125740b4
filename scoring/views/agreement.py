"""How reviewers agree: per pair and per reviewer, with Cohen's kappa and the
candidates a pair disagreed on (scoring.models.review.agreement)."""

from django.shortcuts import render
from django.urls import path

from scoring.access import require_perm
from scoring.models import Agent, Candidate, Review
from scoring.models.candidates import hidden_from
from scoring.models.review import OPINIONS, agreement

from .candidates import agent_filter

# Disagreements listed per pair; the count says how many there are in all.
DISAGREEMENTS_SHOWN = 50


def review_agreement(request):
    require_perm(request, "scoring.view_review")
    agent = agent_filter(request)
    reviews = visible_opinions(request.user, agent)
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
    return render(request, "scoring/review_agreement.html", {
        "agent": agent,
        "agents": Agent.objects.only("id", "name"),
        "pairs": pairs,
        "reviewers": reviewers,
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
