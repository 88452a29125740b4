from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .activity import Activity


class CandidateQuerySet(models.QuerySet):
    def without_ids(self):
        """Leave out the token id lists (a whole context each): for pages."""
        return self.defer("context_ids", "continuation_ids", "edited_ids")

    def pending(self):
        return self.filter(status=Candidate.Status.PENDING)

    def approved(self):
        return self.filter(status=Candidate.Status.APPROVED)

    def in_live_job(self):
        from .training import TrainSample

        return self.filter(Exists(TrainSample.objects.filter(candidate=OuterRef("pk"), live=True)))

    def waiting_for_training(self):
        """Approved and in no job that may still train them: what a send would take."""
        from .training import TrainSample

        live = TrainSample.objects.filter(candidate=OuterRef("pk"), live=True)
        return self.approved().filter(~Exists(live))

    def reviewable_by(self, user, now=None):
        """Pending, not yet decided or skipped by `user`, not held by someone else."""
        now = now or timezone.now()
        decided = Review.objects.filter(candidate=OuterRef("pk"), reviewer=user)
        free = Q(reserved_by__isnull=True) | Q(reserved_by=user) | Q(reserved_until__lte=now)
        return self.pending().filter(free).filter(~Exists(decided))

    def next_for(self, user, agent=None):
        """The candidate `user` should review next: highest divergence first."""
        candidates = self.reviewable_by(user)
        if agent is not None:
            candidates = candidates.filter(agent=agent)
        return candidates.order_by("-divergence", "id").first()

    def held_by_others(self, user, now=None):
        now = now or timezone.now()
        return (
            self.pending()
            .filter(reserved_by__isnull=False, reserved_until__gt=now)
            .exclude(reserved_by=user)
        )


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
    # When the alternate was last sent to a worker: one pending for longer
    # than a claim lasts was lost (a killed worker) and is sent again.
    alternate_requested_at = models.DateTimeField(null=True, blank=True)

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

    objects = CandidateQuerySet.as_manager()

    class Meta:
        ordering = ["-divergence", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "response_key"], name="candidate_unique_response_per_agent"
            )
        ]
        indexes = [
            models.Index(fields=["agent", "status", "-divergence"]),
            # The review queue and the list walk candidates in divergence order;
            # a row carries a whole context's ids, so scanning the table is slow.
            models.Index(fields=["status", "-divergence", "id"], name="candidate_status_divergence"),
            models.Index(fields=["-divergence", "id"], name="candidate_divergence"),
            models.Index(fields=["status", "reserved_until"], name="candidate_status_reserved"),
        ]
        permissions = [("review_candidate", "Can approve, reject, edit and comment on candidates")]

    def __str__(self):
        return f"candidate {self.pk} ({self.divergence:.2f} nats)"

    @property
    def training_continuation_ids(self):
        return self.edited_ids if self.edited_ids is not None else self.continuation_ids

    @property
    def training_text(self):
        return self.edited_text if self.is_edited else self.response_text

    @property
    def is_edited(self):
        # edited_at, not edited_ids: pages defer the (large) id lists.
        return self.edited_at is not None

    def is_reserved_by_other(self, user, now=None):
        now = now or timezone.now()
        return (
            self.reserved_by_id is not None
            and self.reserved_by_id != user.pk
            and self.reserved_until is not None
            and self.reserved_until > now
        )

    # --- reservations ---------------------------------------------------

    def reserve(self, user):
        """Hold this candidate for `user` for a few minutes; False if someone else holds it.

        One conditional update decides between reviewers opening the queue at once.
        """
        now = timezone.now()
        until = now + timedelta(minutes=settings.MEMSCORE_RESERVATION_MINUTES)
        free = Q(reserved_by__isnull=True) | Q(reserved_by=user) | Q(reserved_until__lte=now)
        was_mine = self.reserved_by_id == user.pk and self.reserved_until and self.reserved_until > now
        taken = (
            Candidate.objects.filter(free, pk=self.pk, status=self.Status.PENDING)
            .update(reserved_by=user, reserved_until=until)
            == 1
        )
        if taken:
            self.reserved_by, self.reserved_until = user, until
            if not was_mine:
                Activity.record(user, "reserved", self, until=until.isoformat())
        else:
            self.refresh_from_db(fields=["reserved_by", "reserved_until", "status"])
        return taken

    def release(self, user):
        released = (
            Candidate.objects.filter(pk=self.pk, reserved_by=user)
            .update(reserved_by=None, reserved_until=None)
            == 1
        )
        if released:
            self.reserved_by, self.reserved_until = None, None
            Activity.record(user, "released", self)
        return released

    # --- decisions ------------------------------------------------------

    def decide(self, reviewer, decision, comment=""):
        """Record `reviewer`'s decision (replacing an earlier one) and settle the status.

        Approved once approvals reach the agent's required number and nobody
        rejects; rejected as soon as anyone rejects. The candidate row is locked
        for the whole change, so concurrent deciders settle one after another
        and only one of them records each status transition.
        """
        try:
            decision = Review.Decision(decision)
        except ValueError:
            raise ValidationError({"decision": f"Unknown decision {decision!r}."}) from None
        comment = (comment or "").strip()
        if decision == Review.Decision.REJECT and not comment:
            raise ValidationError({"comment": "A rejection needs a comment saying why."})

        with transaction.atomic():
            # of=self: lock the candidate row only, not its agent's.
            locked = (
                Candidate.objects.without_ids()
                .select_for_update(of=("self",))
                .select_related("agent")
                .get(pk=self.pk)
            )
            locked._check_decidable()
            Review.objects.update_or_create(
                candidate=locked,
                reviewer=reviewer,
                defaults={"decision": decision, "comment": comment},
            )
            Activity.record(
                reviewer, DECISION_VERBS[decision], locked, comment=comment, divergence=locked.divergence
            )
            new_status = locked._settled_status()
            changes = {}
            if locked.reserved_by_id == reviewer.pk:
                # Decided: let the next reviewer (if more approvals are needed) take it.
                changes.update(reserved_by=None, reserved_until=None)
            if new_status != locked.status:
                changes.update(
                    status=new_status,
                    decided_at=None if new_status == self.Status.PENDING else timezone.now(),
                )
            if changes:
                # Conditional on the status we read: a second line of defence
                # behind the row lock (SQLite has no SELECT ... FOR UPDATE).
                updated = Candidate.objects.filter(pk=locked.pk, status=locked.status).update(**changes)
                if updated != 1:
                    raise RuntimeError(f"candidate {locked.pk} changed under its row lock")
                if "status" in changes:
                    Activity.record(
                        reviewer, "status changed", locked, **{"from": locked.status, "to": new_status}
                    )
        self.refresh_from_db()
        return self

    def _check_decidable(self):
        if self.status == self.Status.TRAINED:
            raise ValidationError("This candidate has been trained; its decision is final.")
        if Candidate.objects.filter(pk=self.pk).in_live_job().exists():
            raise ValidationError(
                "This candidate has been sent to training; it can be decided again only if "
                "that job fails."
            )

    def _settled_status(self):
        decisions = list(self.reviews.values_list("decision", flat=True))
        if Review.Decision.REJECT in decisions:
            return self.Status.REJECTED
        if decisions.count(Review.Decision.APPROVE) >= self.agent.required_approvals:
            return self.Status.APPROVED
        return self.Status.PENDING

    def edit_and_approve(self, reviewer, text):
        """Replace the response that will be trained with `text`, then approve.

        The corrected text is rendered with the response node's own role and
        template and tokenized by the agent's server, so its ids match what
        the model would have produced. The original stays beside it.
        Raises ValidationError for bad input and the client's errors when the
        server cannot tokenize.
        """
        from scoring.client import InferenceClient

        from .snapshots import Node

        if not (text or "").strip():
            raise ValidationError({"text": "The corrected response cannot be empty."})
        # Checked before the server call too, so a final candidate costs no request.
        self._check_decidable()
        original = self.response
        edited_node = Node(role=original.role, memory_key=original.memory_key, text=text)
        with InferenceClient.for_agent(self.agent) as client:
            edited_ids = client.tokenize(self.agent.render_node(edited_node))

        with transaction.atomic():
            locked = Candidate.objects.without_ids().select_for_update().get(pk=self.pk)
            locked._check_decidable()
            now = timezone.now()
            Candidate.objects.filter(pk=self.pk).update(
                edited_text=text, edited_ids=edited_ids, edited_by=reviewer, edited_at=now
            )
            Activity.record(
                reviewer, "edited", locked, original_tokens=len(self.continuation_ids),
                edited_tokens=len(edited_ids),
            )
            self.decide(reviewer, Review.Decision.APPROVE)
        return self

    def add_comment(self, user, text):
        text = (text or "").strip()
        if not text:
            raise ValidationError({"text": "A comment cannot be empty."})
        comment = Comment.objects.create(candidate=self, author=user, text=text)
        Activity.record(user, "commented on", self, comment=text[:500])
        return comment


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


DECISION_VERBS = {
    Review.Decision.APPROVE: "approved",
    Review.Decision.REJECT: "rejected",
    Review.Decision.SKIP: "skipped",
}


class Comment(models.Model):
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
