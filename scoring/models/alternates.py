"""A candidate's alternate (what the model says without memories): its status
and the candidate queryset's verbs that move it (see candidates.py for the
state machine). They work on ids, without reading the rows."""

from django.db import models
from django.utils import timezone


class AlternateStatus(models.TextChoices):
    NONE = "none", "not requested"
    PENDING = "pending", "generating"
    DONE = "done", "generated"
    FAILED = "failed", "failed"


class AlternateVerbs:
    """Mixed into CandidateQuerySet."""

    def request_alternates(self):
        """-> pending: their alternates are wanted; the caller sends the tasks."""
        return self.update(
            alternate_status=AlternateStatus.PENDING,
            alternate_error="",
            alternate_requested_at=timezone.now(),
        )

    def record_alternate(self, text, *, cut_off=False):
        return self.update(alternate_text=text, alternate_status=AlternateStatus.DONE,
                           alternate_error="", alternate_cut_off=cut_off)

    def fail_alternates(self, error):
        """-> failed, unless generated meanwhile: done stays done."""
        return self.exclude(alternate_status=AlternateStatus.DONE).update(
            alternate_status=AlternateStatus.FAILED, alternate_error=str(error)[:2000]
        )

    def note_alternates_not_queued(self, error):
        """Still pending: their tasks could not be sent yet (the broker is down)."""
        return self.filter(alternate_status=AlternateStatus.PENDING).update(
            alternate_error=f"could not be queued yet ({error}); it will be sent again"[:2000]
        )

    def lost_alternates(self, cutoff):
        """Pending since before `cutoff`: their task was lost, or never queued."""
        return self.filter(alternate_status=AlternateStatus.PENDING, alternate_requested_at__lt=cutoff)

    def retake_lost_alternates(self, cutoff):
        """Still requested before `cutoff` -> requested now: of two sweeps that
        found one lost, only the one whose update moved it sends it again."""
        return self.filter(alternate_requested_at__lt=cutoff).update(alternate_requested_at=timezone.now())
