"""What reviewers say about a candidate: their decisions and their comments,
and how often reviewers agree (`agreement`, Cohen's kappa from scoring.maths).

The candidate itself, and how the decisions settle its status, live in
`candidates.py`.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from scoring import maths


class Review(models.Model):
    """One reviewer's decision on one candidate (they may change their mind)."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "approve"
        REJECT = "reject", "reject"
        SKIP = "skip", "skip"

    candidate = models.ForeignKey("scoring.Candidate", on_delete=models.CASCADE, related_name="reviews")
    # A reviewer with decisions is deactivated, not deleted: deleting them took
    # their decisions away from candidates that stayed approved.
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    # An approval's text, as the reviewer had it in front of them: the edit
    # they approved (the candidate's edited_at then), or null for the response
    # itself. An approval counts only toward the text that would be trained:
    # an edit made after it, or one blind review hid from its reviewer, is
    # not what they approved (Candidate.counts_toward).
    approved_edit = models.DateTimeField(
        null=True, blank=True, verbose_name="approved edit of",
        help_text="For an approval: the time of the edit it approved; empty for the response itself.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        # The admin's inline and lists named it "Review object (1)".
        return f"{self.get_decision_display()} by {self.reviewer} on candidate {self.candidate_id}"

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["candidate", "reviewer"], name="review_one_per_reviewer_per_candidate"
            ),
            models.CheckConstraint(
                condition=~Q(decision="reject") | ~Q(comment=""),
                name="review_rejection_has_comment",
            ),
        ]


# What the activity log and the pages say a reviewer did.
DECISION_VERBS = {
    Review.Decision.APPROVE: "approved",
    Review.Decision.REJECT: "rejected",
    Review.Decision.SKIP: "skipped",
}


class Comment(models.Model):
    candidate = models.ForeignKey("scoring.Candidate", on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]


# --- how reviewers agree -------------------------------------------------------

# The decisions compared: a skip says nothing about the candidate.
OPINIONS = (Review.Decision.APPROVE, Review.Decision.REJECT)


@dataclass
class PairAgreement:
    """Two reviewers over the candidates both approved or rejected."""

    first: str
    second: str
    compared: int = 0
    agreed: int = 0
    kappa: float = None
    # (candidate id, first's decision, second's decision) where they differ.
    disagreements: list = field(default_factory=list)

    @property
    def rate(self):
        return self.agreed / self.compared if self.compared else None


@dataclass
class ReviewerAgreement:
    """One reviewer against every other, over the candidates they share."""

    name: str
    decisions: int = 0
    compared: int = 0
    agreed: int = 0

    @property
    def rate(self):
        return self.agreed / self.compared if self.compared else None


def agreement(decisions):
    """Pairs and reviewers from (candidate id, reviewer name, decision) rows,
    approvals and rejections only: ([PairAgreement], [ReviewerAgreement]),
    pairs and reviewers by name. A reviewer's rate pools their pairs: of all
    the (candidate, other reviewer) comparisons, the share they agree in."""
    by_candidate = defaultdict(dict)
    reviewers = {}
    for candidate_id, name, decision in decisions:
        if decision not in OPINIONS:
            continue
        by_candidate[candidate_id][name] = str(decision)
        reviewers.setdefault(name, ReviewerAgreement(name)).decisions += 1

    labels = defaultdict(list)  # (first, second) -> [(candidate, a, b)]
    for candidate_id, said in sorted(by_candidate.items()):
        for first, second in combinations(sorted(said), 2):
            labels[first, second].append((candidate_id, said[first], said[second]))

    pairs = []
    for (first, second), rows in sorted(labels.items()):
        pair = PairAgreement(first, second, compared=len(rows))
        pair.agreed = sum(1 for _, a, b in rows if a == b)
        pair.kappa = maths.cohens_kappa((a, b) for _, a, b in rows)
        pair.disagreements = [row for row in rows if row[1] != row[2]]
        pairs.append(pair)
        for name in (first, second):
            reviewers[name].compared += pair.compared
            reviewers[name].agreed += pair.agreed
    return pairs, [reviewers[name] for name in sorted(reviewers)]
