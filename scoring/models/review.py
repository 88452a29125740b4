from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Candidate(models.Model):
    """A response the model predicts much worse without memories: a fine-tuning candidate."""

    class Status(models.TextChoices):
        PENDING = "pending", "awaiting review"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"
        TRAINED = "trained", "trained"

    class AlternateStatus(models.TextChoices):
        NONE = "none", "not requested"
        PENDING = "pending", "generating"
        DONE = "done", "generated"
        FAILED = "failed", "failed"

    agent = models.ForeignKey("scoring.Agent", on_delete=models.CASCADE, related_name="candidates")
    snapshot = models.ForeignKey(
        "scoring.Snapshot", on_delete=models.CASCADE, related_name="candidates"
    )
    run = models.ForeignKey(
        "scoring.ScoringRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="candidates"
    )
    response = models.ForeignKey("scoring.Node", on_delete=models.CASCADE, related_name="+")
    # Identity of the response across snapshots of the same agent (its
    # timestamp, as in the reference), so a response is a candidate once.
    response_key = models.CharField(max_length=100)
    divergence = models.FloatField()
    response_text = models.TextField()
    context_ids = models.JSONField(default=list)
    continuation_ids = models.JSONField(default=list)

    alternate_text = models.TextField(blank=True)
    alternate_status = models.CharField(
        max_length=8, choices=AlternateStatus.choices, default=AlternateStatus.NONE
    )
    alternate_error = models.TextField(blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_at = models.DateTimeField(null=True, blank=True)

    # "Edit and approve": what gets trained when set, kept beside the original.
    edited_text = models.TextField(blank=True)
    edited_ids = models.JSONField(null=True, blank=True)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    edited_at = models.DateTimeField(null=True, blank=True)

    # A reviewer holds a candidate for a few minutes so a team splits the work.
    reserved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reserved_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-divergence", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "response_key"], name="candidate_unique_response_per_agent"
            )
        ]
        indexes = [models.Index(fields=["agent", "status", "-divergence"])]
        permissions = [("review_candidate", "Can approve, reject, edit and comment on candidates")]

    def __str__(self):
        return f"candidate {self.pk} ({self.divergence:.2f} nats)"

    @property
    def training_continuation_ids(self):
        return self.edited_ids if self.edited_ids is not None else self.continuation_ids


class Review(models.Model):
    """One reviewer's decision on one candidate (they may change their mind)."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "approve"
        REJECT = "reject", "reject"
        SKIP = "skip", "skip"

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="reviews")
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


class Comment(models.Model):
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
