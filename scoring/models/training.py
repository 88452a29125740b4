"""Train jobs: the outbox rows of the server's /train, and their state machine.

TrainJob.Status, and the verb that makes each move (scoring.outbox calls them;
every one is a conditional update that says whether it won):

    pending | unknown -> sending     claim(): a dispatcher takes a job whose
                                     backoff has passed
    sending  -> sending              claim(): the claim ran out (its worker
                                     died), so the job is re-sent, same key
    sending  -> pending | unknown    release_claim(): nothing reached the server
                                     / the outcome is unknown
    unknown  -> unknown              resend_now(): an operator cuts the backoff
    pending | sending | unknown
             -> queued               mark_accepted(): the server took it; its
                                     candidates are trained
    queued | running
             -> running | succeeded  record_progress(): what the poller heard
    any but succeeded | failed
             -> failed               mark_failed(): it will not train; its
                                     candidates are approved again

A failed job stays failed: scoring.outbox.retry sends its candidates that are
still approved in a new job.
"""

import uuid

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from .activity import Activity
from .candidates import Candidate


class TrainJobQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE_STATUSES)

    def on_server(self):
        """Accepted by the server and not finished: what the poller asks about."""
        return self.filter(status__in=[TrainJob.Status.QUEUED, TrainJob.Status.RUNNING])

    def succeeded_after(self, agent_id, when):
        """The agent's jobs that succeeded after `when`, latest first: what a
        number measured at `when` knows nothing of."""
        return self.filter(agent_id=agent_id, status=TrainJob.Status.SUCCEEDED,
                           finished_at__gt=when).order_by("-finished_at")

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
    can never start a second job on the server. Its transitions are listed in
    this module's docstring.
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
        # The training page lists jobs newest first.
        indexes = [models.Index(fields=["status"]), models.Index(fields=["-created_at"], name="trainjob_newest_first")]
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
    def server_report(self):
        """What the server's latest answer says beyond the status, where it says
        it (memscore's protocol, docs/protocol.md): a warning (samples cut to
        fit), progress while it trains, what the training did. Only numbers
        are taken as numbers: the answer is the server's, not ours."""
        answer = self.server_status if isinstance(self.server_status, dict) else {}

        def numbers(value, *names):
            value = value if isinstance(value, dict) else {}
            found = {n: value.get(n) for n in names}
            ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in found.values())
            return found if ok else None

        warning = answer.get("warning")
        return {
            "warning": warning if isinstance(warning, str) else "",
            "progress": numbers(answer.get("progress"), "step", "steps") if self.status == self.Status.RUNNING
            else None,
            "training": numbers(answer.get("training"), "steps", "seconds", "first_loss", "last_loss"),
        }

    @property
    def is_active(self):
        return self.status in ACTIVE_STATUSES

    @property
    def needs_attention(self):
        return self.status == self.Status.UNKNOWN

    @property
    def can_retry(self):
        return self.status in (self.Status.FAILED, self.Status.UNKNOWN) or self.backing_off

    @property
    def backing_off(self):
        """Waiting to be sent again after a failed attempt (the server answered
        with an error, or was not reached): 'Send now' skips the wait."""
        return self.status == self.Status.PENDING and self.attempts > 0 and self.retry_after is not None

    @property
    def can_cancel(self):
        """Only a job no server has: waiting to be sent, never accepted. One
        being sent, or whose outcome is unknown, may already be training."""
        return self.status == self.Status.PENDING

    # --- sending (the dispatcher's claim) ----------------------------------

    def claim(self, until, now):
        """pending | unknown | sending (claim ran out) -> sending, held until `until`.

        Returns True if this call took the job; the claim's expiry is then the
        claimant's token (see release_claim and mark_failed).
        """
        claimed = (
            TrainJob.objects.filter(due_for_sending_q(now), pk=self.pk)
            .update(
                status=self.Status.SENDING,
                claimed_until=until,
                attempts=F("attempts") + 1,
                sent_at=now,
            )
            == 1
        )
        if claimed:
            self.refresh_from_db()
        return claimed

    def release_claim(self, claimed_until, status, error, retry_after):
        """sending -> pending (nothing reached the server) or unknown (it may
        have), not before `retry_after`. Only while still claimed with
        `claimed_until`: news from a claim that was taken over is ignored."""
        if status not in (self.Status.PENDING, self.Status.UNKNOWN):
            raise ValueError(f"a claim is released to pending or unknown, not {status}")
        return (
            TrainJob.objects.filter(pk=self.pk, status=self.Status.SENDING, claimed_until=claimed_until)
            .update(status=status, claimed_until=None, retry_after=retry_after, last_error=str(error))
            == 1
        )

    def resend_now(self, by):
        """unknown, or pending after a failed attempt: send again at once (with
        the same key), not after the backoff. Returns False when the job is
        no longer waiting so."""
        with transaction.atomic():
            waiting = TrainJob.objects.filter(pk=self.pk, status__in=[self.Status.UNKNOWN, self.Status.PENDING])
            if waiting.update(retry_after=None) != 1:
                return False
            Activity.record(by, "retried", self, same_key=True)
        self.refresh_from_db()
        return True

    # --- outcomes ------------------------------------------------------------

    def mark_accepted(self, server_job_id):
        """The server took the job: it is queued there, and its candidates are trained.

        One transaction, conditional on the job not being accepted yet, so a
        second sender that got the same job back (same Idempotency-Key) changes
        nothing. Returns True if this call recorded the acceptance.
        """
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
                Candidate.objects.filter(pk__in=self._live_candidates()).mark_trained()
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
        S = self.Status
        jobs = TrainJob.objects.filter(pk=self.pk)
        if claimed_until is not None:
            jobs = jobs.filter(status=S.SENDING, claimed_until=claimed_until)
        else:
            jobs = jobs.exclude(status__in=[S.SUCCEEDED, S.FAILED])
        return self._fail(jobs, error, None, actor_name, "failed")

    def cancel(self, by):
        """pending -> failed, by `by` (a user): a job no server has (can_cancel)
        stops being sent, and its candidates, still approved, may be sent in
        a new job. Returns False when it is no longer pending (a dispatcher
        took it meanwhile: it may reach the server)."""
        jobs = TrainJob.objects.filter(pk=self.pk, status=self.Status.PENDING)
        return self._fail(jobs, f"cancelled by {by.get_username()} before any server accepted it", by, None,
                          "cancelled")

    def _fail(self, jobs, error, by, actor_name, verb):
        """`jobs` (this one, under the caller's conditions) -> failed, its samples freed."""
        S = self.Status
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
                # Trained candidates of a job the server then failed were not
                # trained after all: they go back to approved.
                Candidate.objects.filter(pk__in=self._live_candidates()).mark_untrained()
                self.free_samples()
                Activity.record(by, verb, self, actor_name=actor_name, error=error[:1000])
        self.refresh_from_db()
        return failed

    def free_samples(self):
        """The job's samples stop being live: their candidates may go in a new job."""
        return self.samples.update(live=False)

    def _live_candidates(self):
        return self.samples.filter(live=True).values("candidate_id")

    # --- following the job on the server -------------------------------------

    def record_progress(self, status, answer):
        """queued | running -> running | succeeded (or queued again), as the
        server answered. Returns True if the job was still on the server."""
        S = self.Status
        if status not in (S.QUEUED, S.RUNNING, S.SUCCEEDED):
            raise ValueError(f"the poller records queued, running or succeeded, not {status}")
        updated = TrainJob.objects.on_server().filter(pk=self.pk).update(
            status=status,
            server_status=answer,
            last_error="",
            finished_at=timezone.now() if status == S.SUCCEEDED else None,
        )
        if updated and status == S.SUCCEEDED:
            Activity.record(None, "training succeeded", self, actor_name="system")
        return updated == 1

    def record_server_answer(self, answer, error=None):
        """Keep what the server said about the job (and why it is not
        understood, if it is not), without changing its status."""
        changes = {"server_status": answer}
        if error is not None:
            changes["last_error"] = error
        TrainJob.objects.filter(pk=self.pk).update(**changes)

    def record_polling_error(self, error):
        TrainJob.objects.filter(pk=self.pk).update(last_error=f"polling: {error}")


ACTIVE_STATUSES = [
    TrainJob.Status.PENDING,
    TrainJob.Status.SENDING,
    TrainJob.Status.UNKNOWN,
    TrainJob.Status.QUEUED,
    TrainJob.Status.RUNNING,
]


def label_senders(jobs):
    """Set `sent_by` on each job: its user's name, else who sent it
    ("command line"), from the activity log (as label_origins does for runs).
    Returns the jobs."""
    jobs = list(jobs)
    names = Activity.actor_names("sent to training", [j for j in jobs if j.created_by_id is None])
    for job in jobs:
        job.sent_by = job.created_by.get_username() if job.created_by_id is not None else names.get(str(job.pk), "")
    return jobs


class TrainSample(models.Model):
    """One candidate in one training job, with the exact ids that are sent."""

    job = models.ForeignKey(TrainJob, on_delete=models.CASCADE, related_name="samples")
    # A sample outlives its candidate's deletion only with its job's (its
    # agent's): alone, deleting a candidate sent to training is refused.
    candidate = models.ForeignKey("scoring.Candidate", on_delete=models.RESTRICT, related_name="samples")
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
