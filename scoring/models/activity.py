"""The activity log: who did what, when (every verb of the models records itself here)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

# What a target type is called on the pages: a model's name is one word
# ("scoringrun"), which no user should read.
TARGET_LABELS = {"scoringrun": "run", "trainjob": "train job"}


class Activity(models.Model):
    """Who did what, when: every change a person (or an agent's token) makes."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept even if the user is deleted; "agent:NAME" for the snapshot API, "system" for beat.
    actor_name = models.CharField(max_length=150)
    verb = models.CharField(max_length=50, db_index=True)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "activity"
        # The activity page filtered by what was done, newest first; its
        # "to a" menu lists the distinct target types.
        indexes = [
            models.Index(fields=["verb", "-created_at", "-id"], name="activity_verb_newest_first"),
            models.Index(fields=["target_type"], name="activity_target_type"),
        ]

    def __str__(self):
        return f"{self.actor_name} {self.verb} {self.target_repr}"

    @property
    def target_label(self):
        """The target's type in words ("run", not "scoringrun")."""
        return TARGET_LABELS.get(self.target_type, self.target_type)

    @classmethod
    def actor_names(cls, verb, rows):
        """{str(pk): actor_name} of the entries `verb` on `rows` (of one model): who
        did it where no user did ("command line", "system"), read from the log
        in one query rather than stored twice."""
        rows = list(rows)
        if not rows:
            return {}
        found = cls.objects.filter(verb=verb, target_type=rows[0]._meta.model_name,
                                   target_id__in=[str(row.pk) for row in rows])
        return dict(found.values_list("target_id", "actor_name"))

    @classmethod
    def record(cls, actor, verb, target=None, *, actor_name=None, **detail):
        """Log one action. `actor` is a user or None (then give actor_name)."""
        if actor is not None and getattr(actor, "is_authenticated", False):
            name = actor.get_username()
        else:
            actor, name = None, actor_name or "system"
        return cls.objects.create(
            actor=actor,
            actor_name=name,
            verb=verb,
            target_type=target._meta.model_name if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            target_repr=str(target)[:300] if target is not None else "",
            detail=detail,
        )
