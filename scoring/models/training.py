import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class TrainJob(models.Model):
    """A batch of approved samples for the server's /train: an outbox row.

    The row is written in the same transaction as the decision to train; a
    dispatcher posts it with its id as the Idempotency-Key, so a retried send
    can never start a second job on the server.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "waiting to be sent"
        SENDING = "sending", "sending"
        # The POST's outcome is unknown (e.g. a timeout after sending): it is
        # re-sent only with the same key, and shown as needing attention.
        UNKNOWN = "unknown", "needs attention"
        QUEUED = "queued", "queued on server"
        RUNNING = "running", "training"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey("scoring.Agent", on_delete=models.CASCADE, related_name="train_jobs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    server_job_id = models.CharField(max_length=200, blank=True)
    server_status = models.JSONField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"])]
        permissions = [("send_training", "Can send approved samples to training")]
        constraints = [
            # Once the server gave a job id, the job can never be posted again.
            models.CheckConstraint(
                condition=~Q(status__in=["queued", "running", "succeeded"]) | ~Q(server_job_id=""),
                name="trainjob_accepted_has_server_id",
            )
        ]

    def __str__(self):
        return f"train job {str(self.id)[:8]}"

    @property
    def idempotency_key(self):
        return str(self.id)


class TrainSample(models.Model):
    """One candidate in one training job, with the exact ids that are sent."""

    job = models.ForeignKey(TrainJob, on_delete=models.CASCADE, related_name="samples")
    candidate = models.ForeignKey("scoring.Candidate", on_delete=models.CASCADE, related_name="samples")
    context_ids = models.JSONField()
    continuation_ids = models.JSONField()
    # False once the job failed for good, so the candidate may be sent again.
    live = models.BooleanField(default=True)

    class Meta:
        constraints = [
            # Exactly-once training relies on this: a candidate is in at most
            # one job that may still train it.
            models.UniqueConstraint(
                fields=["candidate"], condition=Q(live=True), name="sample_in_one_live_job"
            )
        ]
