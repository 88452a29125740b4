import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from .activity import Activity


class TrainJobQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE_STATUSES)

    def on_server(self):
        """Accepted by the server and not finished: what the poller asks about."""
        return self.filter(status__in=[TrainJob.Status.QUEUED, TrainJob.Status.RUNNING])

    def due_for_sending(self, now=None):
        """Jobs a dispatcher may claim now, oldest first (see `due_for_sending_q`)."""
        return self.filter(due_for_sending_q(now or timezone.now())).order_by("created_at")


def due_for_sending_q(now):
    """Which jobs a dispatcher may claim at `now`:

    - pending, once their backoff has passed;
    - sending, when the claim ran out: the worker died mid-send, so the outcome
      is unknown and the job is re-sent with the same key;
    - unknown, once their backoff has passed (re-sent with the same key).
    """
    S = TrainJob.Status
    waited = Q(retry_after__isnull=True) | Q(retry_after__lte=now)
    return (
        (Q(status=S.PENDING) & waited)
        | Q(status=S.SENDING, claimed_until__lt=now)
        | (Q(status=S.UNKNOWN) & waited)
    )


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
    # Not sent again before this time: the backoff after a failed attempt.
    retry_after = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Fine-tune runs started after training, on the samples' snapshots, to see
    # whether their divergence fell.
    rescore_runs = models.ManyToManyField("scoring.ScoringRun", blank=True, related_name="+")

    objects = TrainJobQuerySet.as_manager()

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

    @property
    def is_active(self):
        return self.status in ACTIVE_STATUSES

    @property
    def needs_attention(self):
        return self.status == self.Status.UNKNOWN

    @property
    def can_retry(self):
        return self.status in (self.Status.FAILED, self.Status.UNKNOWN)

    def mark_accepted(self, server_job_id):
        """The server took the job: it is queued there, and its candidates are trained.

        One transaction, conditional on the job not being accepted yet, so a
        second sender that got the same job back (same Idempotency-Key) changes
        nothing. Returns True if this call recorded the acceptance.
        """
        from .review import Candidate

        S = self.Status
        now = timezone.now()
        with transaction.atomic():
            accepted = (
                TrainJob.objects.filter(pk=self.pk, status__in=[S.PENDING, S.SENDING, S.UNKNOWN])
                .update(
                    status=S.QUEUED,
                    server_job_id=server_job_id,
                    accepted_at=now,
                    claimed_until=None,
                    retry_after=None,
                    last_error="",
                )
                == 1
            )
            if accepted:
                in_job = self.samples.filter(live=True).values("candidate_id")
                Candidate.objects.filter(pk__in=in_job).update(status=Candidate.Status.TRAINED)
                Activity.record(
                    None, "accepted by server", self, actor_name="system", server_job_id=server_job_id
                )
        self.refresh_from_db()
        return accepted

    def mark_failed(self, error, *, claimed_until=None, actor_name="system"):
        """The job will not train: its samples stop being live, so their
        candidates (still approved) can be sent again in a new job.

        With `claimed_until`, only the dispatcher holding that claim may fail it.
        """
        from .review import Candidate

        S = self.Status
        jobs = TrainJob.objects.filter(pk=self.pk)
        if claimed_until is not None:
            jobs = jobs.filter(status=S.SENDING, claimed_until=claimed_until)
        else:
            jobs = jobs.exclude(status__in=[S.SUCCEEDED, S.FAILED])
        with transaction.atomic():
            failed = (
                jobs.update(
                    status=S.FAILED,
                    last_error=error,
                    claimed_until=None,
                    retry_after=None,
                    finished_at=timezone.now(),
                )
                == 1
            )
            if failed:
                in_job = self.samples.filter(live=True).values("candidate_id")
                # Trained candidates of a job the server then failed were not
                # trained after all: they go back to approved.
                Candidate.objects.filter(pk__in=in_job, status=Candidate.Status.TRAINED).update(
                    status=Candidate.Status.APPROVED
                )
                self.samples.update(live=False)
                Activity.record(None, "failed", self, actor_name=actor_name, error=error[:1000])
        self.refresh_from_db()
        return failed

    def retry(self, by):
        """Operator action for a failed or unknown job.

        Failed: a fresh job for its candidates that are still approved (the
        failed job's samples are not live any more). Returns the new job, or
        None when none is left to send.
        Unknown: the same job is re-sent now, with the same Idempotency-Key,
        so the server cannot start it twice. Returns this job.
        """
        from scoring.training import nudge_dispatcher, send_to_training

        S = self.Status
        if self.status == S.FAILED:
            with transaction.atomic():
                self.samples.update(live=False)
                candidate_ids = list(self.samples.values_list("candidate_id", flat=True))
                new_job = send_to_training(self.agent, by, candidate_ids=candidate_ids)
                Activity.record(
                    by, "retried", self, new_job=str(new_job.pk) if new_job else None,
                    samples=new_job.samples.count() if new_job else 0,
                )
            return new_job
        if self.status == S.UNKNOWN:
            with transaction.atomic():
                if TrainJob.objects.filter(pk=self.pk, status=S.UNKNOWN).update(retry_after=None) != 1:
                    raise ValidationError("This job is no longer waiting to be re-sent.")
                Activity.record(by, "retried", self, same_key=True)
                transaction.on_commit(lambda: nudge_dispatcher(self.pk))
            self.refresh_from_db()
            return self
        raise ValidationError(
            f"Only failed jobs and jobs needing attention can be retried; this one is "
            f"{self.get_status_display()}."
        )

    def rescore(self, by):
        """Start a fine-tune run on each snapshot the job's samples came from.

        Each run covers the conversation from the earliest trained response of
        its snapshot to the end, so every sample's response is scored again.
        Returns the runs; ValidationError when the job has not succeeded.
        """
        from scoring.engine import start_run

        from .runs import Mode
        from .snapshots import Node, Section

        if self.status != self.Status.SUCCEEDED:
            raise ValidationError("Re-score after the training succeeded: until then the model has not changed.")
        earliest = {}
        for snapshot_id, index in self.samples.values_list(
            "candidate__snapshot_id", "candidate__response__index"
        ):
            earliest[snapshot_id] = min(index, earliest.get(snapshot_id, index))
        runs = []
        with transaction.atomic():
            for snapshot_id, first_index in sorted(earliest.items()):
                snapshot = self.agent.snapshots.get(pk=snapshot_id)
                entries = Node.objects.filter(snapshot=snapshot, section=Section.CONVERSATION).count()
                params = {"count": entries - first_index, "alternates": False}
                runs.append(start_run(snapshot, Mode.FINETUNE, params=params, by=by))
            self.rescore_runs.add(*runs)
            Activity.record(by, "re-scored", self, runs=[r.pk for r in runs])
        return runs


ACTIVE_STATUSES = [
    TrainJob.Status.PENDING,
    TrainJob.Status.SENDING,
    TrainJob.Status.UNKNOWN,
    TrainJob.Status.QUEUED,
    TrainJob.Status.RUNNING,
]


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
