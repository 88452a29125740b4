"""What reviewers say about a candidate: their decisions and their comments.

The candidate itself, and how the decisions settle its status, live in
`candidates.py`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Review(models.Model):
    """One reviewer's decision on one candidate (they may change their mind)."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "approve"
        REJECT = "reject", "reject"
        SKIP = "skip", "skip"

    candidate = models.ForeignKey("scoring.Candidate", on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

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
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
