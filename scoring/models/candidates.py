"""Fine-tuning candidates: the responses worth training on, and their two state machines.

Candidate.Status (what the team decided, and what training did with it):

    pending  <-> approved <-> rejected    decide(): settled from the reviews, any
                                          way round, until the candidate is in a
                                          live train job or trained; a vote that
                                          would move a settled (approved or
                                          rejected) candidate is refused unless
                                          confirmed, and is logged as a reversal
    approved  -> trained                  CandidateQuerySet.mark_trained(): the
                                          server accepted its job
    trained   -> approved                 CandidateQuerySet.mark_untrained(): that
                                          job failed after all

Candidate.AlternateStatus (the model's own answer without memories, beside the
response), moved by scoring.engine.alternates with the queryset's verbs (in
alternates.py):

    none | failed | pending -> pending    request_alternates(); a lost one is
                                          sent again (retake_lost_alternates)
    pending -> done                       record_alternate()
    none | pending | failed -> failed     fail_alternates() (done stays done)
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .activity import Activity
from .agents import TrainingContext
from .alternates import AlternateStatus, AlternateVerbs
from .review import DECISION_VERBS, OPINIONS, Comment, Review


def settled_status(approvals, rejections, agent):
    """What the reviews call for, by the agent's rule: rejected once
    rejections reach its `rejections_to_settle` (a rejection outweighs any
    number of approvals), else approved once approvals reach its
    `required_approvals`, else still pending."""
    if rejections >= agent.rejections_to_settle:
        return Candidate.Status.REJECTED
    if approvals >= agent.required_approvals:
        return Candidate.Status.APPROVED
    return Candidate.Status.PENDING


class ReversalNeedsConfirmation(ValidationError):
    """A vote would reverse a settled candidate's status; decide() again with
    confirm_reversal=True to go ahead. `new_status` is what it would become."""

    def __init__(self, candidate, decision, new_status):
        self.candidate, self.new_status = candidate, new_status
        verb = {"approve": "approval", "reject": "rejection", "skip": "skip"}[decision]
        super().__init__(
            f"Candidate #{candidate.pk} is already {candidate.get_status_display()}; your {verb} "
            f"would make it {status_words(new_status)}. Confirm to reverse the decision."
        )


def status_words(status):
    """A status as a sentence's end: "it would make it ..."."""
    return "pending again (awaiting review)" if status == Candidate.Status.PENDING else str(status)


def settling_rule(agent):
    """The agent's rule in words, as the pages show it."""
    approvals, rejections = agent.required_approvals, agent.rejections_to_settle
    return (
        f"Needs {approvals} approval{'s' if approvals != 1 else ''}; "
        f"{rejections} rejection{'s' if rejections != 1 else ''} reject{'s' if rejections == 1 else ''} it."
    )


# --- blind review: the one rule ------------------------------------------------
#
# Under an agent's blind_review, a reviewer (a user who may review) does not see
# the others' decisions and comments on a candidate still pending until they
# have approved or rejected it themselves (a skip is no opinion and reveals
# nothing). Once the candidate is settled, or for users who do not review,
# nothing is hidden. The candidate page, the queue, the activity log and the
# agreement page all ask these two functions. An edit ("edit and approve") is
# its editor's approval, so hidden with it (edit_shown_to).


def blind_to(user, candidate, my_decision):
    """Whether blind review hides others' decisions on `candidate` from
    `user`, whose own decision on it is `my_decision` (None: none yet)."""
    return (
        candidate.agent.blind_review
        and candidate.status == Candidate.Status.PENDING
        and user.has_perm("scoring.review_candidate")
        and my_decision not in OPINIONS
    )


def edit_shown_to(user, candidate, blind):
    """Whether `candidate` has an edit that `user`, to whom blind_to answered
    `blind`, may see: blind review hides anyone else's (it says they approved)."""
    return candidate.is_edited and not (blind and candidate.edited_by_id != user.pk)


def text_seen_by(user, candidate, my_decision):
    """Which text `user`, whose decision so far is `my_decision`, has in front
    of them: the candidate's edit (its edited_at) or the response (None).
    What an approval of theirs approves (Review.approved_edit)."""
    shown = edit_shown_to(user, candidate, blind_to(user, candidate, my_decision))
    return candidate.edited_at if shown else None


# decide()'s seen_edit when the caller does not say what the reviewer had in
# front of them: what the candidate page would show them now (text_seen_by).
AS_SHOWN_NOW = object()


def listed_text(user, candidate):
    """What a list of candidates shows `user` of one: its response, never an
    edit, unless the edit is their own. What a bulk approval approves."""
    return candidate.edited_at if candidate.is_edited and candidate.edited_by_id == user.pk else None


def hidden_from(user):
    """The candidates whose others' decisions blind review hides from `user`,
    as a queryset (for SQL filters); None when nothing is hidden."""
    if not user.has_perm("scoring.review_candidate"):
        return None
    mine = Review.objects.filter(candidate=OuterRef("pk"), reviewer=user, decision__in=OPINIONS)
    return Candidate.objects.filter(agent__blind_review=True, status=Candidate.Status.PENDING).filter(~Exists(mine))


def _live_samples():
    # TrainSample's module imports this one (a job marks its candidates
    # trained), so the model is looked up by name rather than imported.
    TrainSample = apps.get_model("scoring", "TrainSample")
    return TrainSample.objects.filter(candidate=OuterRef("pk"), live=True)


@dataclass
class BulkDecision:
    """What one decision did to each of several candidates (decide_each)."""

    decided: list = field(default_factory=list)  # every candidate the vote was recorded on, in order
    moved: list = field(default_factory=list)  # [(candidate, status before)]: the vote changed its status
    stayed: list = field(default_factory=list)  # recorded, the status unchanged (other reviews settle it)
    unconfirmed: list = field(default_factory=list)  # [ReversalNeedsConfirmation]: left as they were
    refused: list = field(default_factory=list)  # [(candidate, ValidationError)]: e.g. trained, final
    # Approved as blind review showed them, hiding another's edit: not counted toward it.
    uncounted: list = field(default_factory=list)

    def where_they_stand(self):
        """Where the vote left the candidates, a sentence per outcome:
        "Now approved: #1. Still awaiting review: #2. Unchanged, still rejected: #3."
        (a reversal, a move from a settled status, is for the caller to say)."""
        groups = {}
        for c, before in self.moved:
            if before not in Candidate.SETTLED:
                groups.setdefault((0, f"Now {c.get_status_display()}"), []).append(c.pk)
        for c in self.stayed:
            if c.status == Candidate.Status.PENDING:
                groups.setdefault((1, "Still awaiting review"), []).append(c.pk)
            else:
                groups.setdefault((2, f"Unchanged, still {c.get_status_display()}"), []).append(c.pk)
        if self.uncounted:
            label = ("Your approval is of the response the list shows, not of another reviewer's edit, so it does "
                     "not count toward the edit that would be trained (open it to read the edit and approve it there)")
            groups[(3, label)] = [c.pk for c in self.uncounted]
        return " ".join(
            f"{label}: {', '.join(f'#{pk}' for pk in pks)}." for (_, label), pks in sorted(groups.items())
        )


def decide_each(candidates, reviewer, decision, comment="", *, confirm_reversal=False):
    """`reviewer`'s decision on each candidate (Candidate.decide), sorted by
    what it did: the bulk actions of the candidate list and of the admin."""
    done = BulkDecision()
    for candidate in candidates:
        before = candidate.status
        try:
            candidate.decide(reviewer, decision, comment, confirm_reversal=confirm_reversal,
                             seen_edit=listed_text(reviewer, candidate))
        except ReversalNeedsConfirmation as e:
            done.unconfirmed.append(e)
        except ValidationError as e:
            done.refused.append((candidate, e))
        else:
            done.decided.append(candidate)
            if decision == Review.Decision.APPROVE and candidate.is_edited and not candidate.counts_toward(
                Review.objects.get(candidate=candidate, reviewer=reviewer)
            ):
                done.uncounted.append(candidate)
            if candidate.status == before:
                done.stayed.append(candidate)
            else:
                done.moved.append((candidate, before))
    return done


class CandidateQuerySet(AlternateVerbs, models.QuerySet):
    def without_ids(self):
        """Leave out the token id lists (a whole context each): for pages."""
        return self.defer("context_ids", "continuation_ids", "edited_ids")

    def for_page(self):
        """As the candidate's page and the review actions use it: with what it
        shows joined, without the token id lists."""
        return self.without_ids().select_related(
            "agent", "snapshot", "run", "response", "reserved_by", "edited_by"
        ).defer("response__token_ids")

    def pending(self):
        return self.filter(status=Candidate.Status.PENDING)

    def approved(self):
        return self.filter(status=Candidate.Status.APPROVED)

    def in_live_job(self):
        return self.filter(Exists(_live_samples()))

    def waiting_for_training(self):
        """Approved and in no job that may still train them: what a send would take."""
        return self.approved().filter(~Exists(_live_samples()))

    def reviewable_by(self, user, now=None):
        """Pending, not yet decided or skipped by `user`, not held by someone else."""
        now = now or timezone.now()
        decided = Review.objects.filter(candidate=OuterRef("pk"), reviewer=user)
        free = Q(reserved_by__isnull=True) | Q(reserved_by=user) | Q(reserved_until__lte=now)
        return self.pending().filter(free).filter(~Exists(decided))

    def next_for(self, user, agent=None, after=None):
        """The candidate `user` should review next: highest divergence first.

        `after` (a candidate) moves on past it in that order, back to the top
        after the last one; None when no other candidate waits for `user`.
        """
        candidates = self.reviewable_by(user)
        if agent is not None:
            candidates = candidates.filter(agent=agent)
        ordered = candidates.order_by("-divergence", "id")
        if after is None:
            return ordered.first()
        later = Q(divergence__lt=after.divergence) | Q(divergence=after.divergence, id__gt=after.pk)
        return ordered.filter(later).first() or ordered.exclude(pk=after.pk).first()

    def held_by_others(self, user, now=None):
        now = now or timezone.now()
        return self.pending().filter(reserved_by__isnull=False, reserved_until__gt=now).exclude(reserved_by=user)

    # --- transitions made by training (see TrainJob) -----------------------

    def mark_trained(self):
        """approved -> trained: the server accepted the job holding these."""
        return self.update(status=Candidate.Status.TRAINED)

    def mark_untrained(self):
        """trained -> approved: their job failed, so they may be sent again."""
        return self.filter(status=Candidate.Status.TRAINED).update(status=Candidate.Status.APPROVED)


class Candidate(models.Model):
    """A response the model predicts much worse without memories: a fine-tuning
    candidate. Its two state machines are in this module's docstring."""

    class Status(models.TextChoices):
        PENDING = "pending", "awaiting review"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"
        TRAINED = "trained", "trained"

    # Decided by the reviews; a vote that would move it again is a reversal.
    SETTLED = (Status.APPROVED, Status.REJECTED)
    AlternateStatus = AlternateStatus
    TrainingContext = TrainingContext

    agent = models.ForeignKey("scoring.Agent", on_delete=models.CASCADE, related_name="candidates")
    snapshot = models.ForeignKey("scoring.Snapshot", on_delete=models.CASCADE, related_name="candidates")
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
    # What context_ids hold: the agent's "Samples' context" when the candidate was
    # made or last refreshed. The setting may change since; a reviewed candidate
    # keeps the context its reviewers saw.
    training_context = models.CharField(max_length=20, choices=TrainingContext.choices,
                                        default=TrainingContext.AS_SCORED)

    alternate_text = models.TextField(blank=True)
    alternate_status = models.CharField(max_length=8, choices=AlternateStatus.choices, default=AlternateStatus.NONE)
    alternate_error = models.TextField(blank=True)
    # When the alternate was last sent to a worker: one pending for longer
    # than a claim lasts was lost (a killed worker) and is sent again.
    alternate_requested_at = models.DateTimeField(null=True, blank=True)
    # The server stopped the alternate at its length limit: the model had not finished.
    alternate_cut_off = models.BooleanField(default=False)

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
            models.UniqueConstraint(fields=["agent", "response_key"], name="candidate_unique_response_per_agent")
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
        taken = (
            Candidate.objects.filter(free, pk=self.pk, status=self.Status.PENDING)
            .update(reserved_by=user, reserved_until=until)
            == 1
        )
        # Not in the activity log: a hold lasts minutes and shows where it
        # matters (the queue, the list, the candidate's page); logged, every
        # candidate opened drowned the decisions (and one that lapses was
        # never logged as released).
        if taken:
            self.reserved_by, self.reserved_until = user, until
        else:
            self.refresh_from_db(fields=["reserved_by", "reserved_until", "status"])
        return taken

    def release(self, user):
        mine = Candidate.objects.filter(pk=self.pk, reserved_by=user)
        released = mine.update(reserved_by=None, reserved_until=None) == 1
        if released:
            self.reserved_by, self.reserved_until = None, None
        return released

    # --- decisions ------------------------------------------------------

    @property
    def is_settled(self):
        """Approved or rejected by the reviews (and not yet trained)."""
        return self.status in self.SETTLED

    def counts_toward(self, review):
        """Whether `review` (or a (decision, approved_edit) pair) is an approval
        of the text that would be trained: of the edit, once there is one, not
        of the response before it (nor of the response as blind review showed
        it, hiding another's edit)."""
        decision, approved_edit = review if isinstance(review, tuple) else (review.decision, review.approved_edit)
        return decision == Review.Decision.APPROVE and approved_edit == self.edited_at

    def status_after(self, reviewer, decision, seen_edit=AS_SHOWN_NOW):
        """The status `reviewer`'s `decision` would settle, in place of their
        current one (what the page tells a reviewer before they vote); an
        approval of `seen_edit` (decide's)."""
        rows = list(self.reviews.values_list("reviewer_id", "decision", "approved_edit"))
        mine = next((d for r, d, _ in rows if r == reviewer.pk), None)
        reviews = [(d, e) for r, d, e in rows if r != reviewer.pk]
        decision = Review.Decision(decision)
        approved = self._approved_text(reviewer, mine, seen_edit) if decision == Review.Decision.APPROVE else None
        reviews.append((decision, approved))
        return self._status_of(reviews)

    def _approved_text(self, reviewer, my_decision, seen_edit):
        """What an approval by `reviewer` (whose decision so far is
        `my_decision`) approves: `seen_edit` as their page sent it, but never
        an edit blind review hides from them; AS_SHOWN_NOW, what their page
        would show now."""
        visible = text_seen_by(reviewer, self, my_decision)
        approved = visible if seen_edit is AS_SHOWN_NOW else seen_edit
        if approved is not None and approved == self.edited_at != visible:
            return None  # an edit hidden from them: they saw the response
        return approved

    def status_after_edit(self, reviewer):
        """The status `reviewer`'s edit and approval would settle: the others'
        approvals were of an earlier text, their rejections stand."""
        others = self.reviews.exclude(reviewer=reviewer).values_list("decision", flat=True)
        return settled_status(1, sum(d == Review.Decision.REJECT for d in others), self.agent)

    def _status_of(self, reviews):
        """settled_status of [(decision, approved_edit)]: approvals of this text only."""
        approvals = sum(self.counts_toward(r) for r in reviews)
        rejections = sum(d == Review.Decision.REJECT for d, _ in reviews)
        return settled_status(approvals, rejections, self.agent)

    def decide(self, reviewer, decision, comment="", confirm_reversal=False, seen_edit=AS_SHOWN_NOW):
        """Record `reviewer`'s decision (replacing an earlier one) and settle the status.

        An approval is of the text the reviewer had in front of them:
        `seen_edit`, the edit their page showed (its edited_at) or None for the
        response itself, as the page sent it. An edit made since (the page was
        open while another reviewer edited) is then not what they approved,
        and the approval does not count toward it. An edit blind review hides
        from them is never taken as seen. Left out, what their page would show
        them now (text_seen_by).

        The status follows settled_status (the agent's rule). The candidate row is locked
        for the whole change, so concurrent deciders settle one after another
        and only one of them records each status transition.

        A vote that would move a settled candidate to another status (approved
        to rejected, or back to pending, ...) raises ReversalNeedsConfirmation
        unless `confirm_reversal`; confirmed, it is logged as "reversed the
        decision on". A vote that leaves the
        status as it is needs no confirmation (the page says it changes nothing).
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
                Candidate.objects.without_ids().select_for_update(of=("self",)).select_related("agent").get(pk=self.pk)
            )
            locked.check_decidable()
            new_status = locked.status_after(reviewer, decision, seen_edit)
            reverses = locked.is_settled and new_status != locked.status
            if reverses and not confirm_reversal:
                raise ReversalNeedsConfirmation(locked, decision, new_status)
            earlier = Review.objects.filter(candidate=locked, reviewer=reviewer).first()
            approved_edit = None
            if decision == Review.Decision.APPROVE:
                approved_edit = locked._approved_text(reviewer, earlier.decision if earlier else None, seen_edit)
            Review.objects.update_or_create(
                candidate=locked, reviewer=reviewer,
                defaults={"decision": decision, "comment": comment, "approved_edit": approved_edit},
            )
            replaced = {}
            if earlier is not None:
                # The log keeps what the review row no longer holds.
                replaced = {"replaced": earlier.decision, "replaced_comment": earlier.comment}
            Activity.record(
                reviewer, DECISION_VERBS[decision], locked, comment=comment, divergence=locked.divergence,
                **replaced,
            )
            if reverses:
                Activity.record(
                    reviewer, "reversed the decision on", locked,
                    **{"from": locked.status, "to": new_status, "decision": decision, "confirmed": True},
                )
            locked._settle(reviewer)
        self.refresh_from_db()
        return self

    def _settle(self, reviewer):
        """Write the status the reviews now call for (on a row locked by decide)."""
        new_status = self._settled_status()
        changes = {}
        settled = new_status != self.Status.PENDING
        if self.reserved_by_id is not None and (self.reserved_by_id == reviewer.pk or settled):
            # Decided: let the next reviewer (if more approvals are needed) take
            # it; settled, it is out of the queue, whoever held it.
            changes.update(reserved_by=None, reserved_until=None)
        if new_status != self.status:
            changes.update(
                status=new_status,
                decided_at=None if new_status == self.Status.PENDING else timezone.now(),
            )
        if not changes:
            return
        # Conditional on the status we read: a second line of defence
        # behind the row lock (SQLite has no SELECT ... FOR UPDATE).
        updated = Candidate.objects.filter(pk=self.pk, status=self.status).update(**changes)
        if updated != 1:
            raise RuntimeError(f"candidate {self.pk} changed under its row lock")
        if "status" in changes:
            Activity.record(reviewer, "status changed", self, **{"from": self.status, "to": new_status})

    def check_decidable(self):
        """ValidationError unless a decision may still change this candidate."""
        if self.status == self.Status.TRAINED:
            raise ValidationError("This candidate has been trained; its decision is final.")
        if Candidate.objects.filter(pk=self.pk).in_live_job().exists():
            raise ValidationError(
                "This candidate has been sent to training; it can be decided again only if "
                "that job fails."
            )

    def _settled_status(self):
        return self._status_of(list(self.reviews.values_list("decision", "approved_edit")))

    def approve_edited(self, reviewer, text, edited_ids, *, confirm_reversal=False):
        """Keep `text` (tokenized as `edited_ids`) as what will be trained, then approve.

        The original stays beside it. scoring.editing tokenizes the text on the
        agent's server and calls this; ValidationError when the candidate can no
        longer be decided.
        """
        if not (text or "").strip():
            raise ValidationError({"text": "The corrected response cannot be empty."})
        with transaction.atomic():
            locked = Candidate.objects.without_ids().select_for_update().get(pk=self.pk)
            locked.check_decidable()
            Candidate.objects.filter(pk=self.pk).update(
                edited_text=text, edited_ids=edited_ids, edited_by=reviewer, edited_at=timezone.now()
            )
            Activity.record(
                reviewer, "edited", locked, original_tokens=len(self.continuation_ids),
                edited_tokens=len(edited_ids),
            )
            self.decide(reviewer, Review.Decision.APPROVE, confirm_reversal=confirm_reversal)
        return self

    def add_comment(self, user, text):
        text = (text or "").strip()
        if not text:
            raise ValidationError({"text": "A comment cannot be empty."})
        comment = Comment.objects.create(candidate=self, author=user, text=text)
        Activity.record(user, "commented on", self, comment=text[:500])
        return comment
