from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.db.models.functions import Lower
from django.utils import timezone

from scoring import maths


class Section(models.TextChoices):
    # Order matters: it is the order in which sections are concatenated.
    SYSTEM = "system", "system"
    IDENTITY = "identity", "identity"
    JOURNAL = "journal", "journal"
    CONVERSATION = "conversation", "conversation"


SECTION_ORDER = [Section.SYSTEM, Section.IDENTITY, Section.JOURNAL, Section.CONVERSATION]


class Snapshot(models.Model):
    """One agent's whole context at one moment, as the agent sent it."""

    class Source(models.TextChoices):
        API = "api", "API"
        UPLOAD = "upload", "upload"
        CLI = "cli", "command line"

    agent = models.ForeignKey("scoring.Agent", on_delete=models.CASCADE, related_name="snapshots")
    taken_at = models.DateTimeField()
    imported_at = models.DateTimeField(auto_now_add=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    # Counts kept at import, so lists never count nodes.
    node_count = models.PositiveIntegerField(default=0)
    memory_count = models.PositiveIntegerField(default=0)
    response_count = models.PositiveIntegerField(default=0)
    token_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-taken_at", "-id"]
        indexes = [models.Index(fields=["agent", "-taken_at"])]

    def __str__(self):
        return f"{self.agent.name} @ {self.taken_at:%Y-%m-%d %H:%M}"


class NodeQuerySet(models.QuerySet):
    def memories(self):
        return self.exclude(memory_key="")

    def responses(self):
        return self.filter(section=Section.CONVERSATION, role="assistant")

    def in_context_order(self, *first):
        """Ordered by `first` fields, then as the context holds the nodes:
        section by section in SECTION_ORDER (not the sections' names, which
        sort "conversation" first), then by index."""
        rank = Case(*[When(section=s, then=Value(i)) for i, s in enumerate(SECTION_ORDER)],
                    output_field=IntegerField())
        return self.order_by(*first, rank, "index")


class Node(models.Model):
    """A message or a memory in one section of a snapshot."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="nodes")
    section = models.CharField(max_length=12, choices=Section.choices)
    index = models.PositiveIntegerField(help_text="Position within its section.")
    role = models.CharField(max_length=40, blank=True)
    memory_key = models.CharField(max_length=300, blank=True)
    memory = models.ForeignKey(
        "scoring.Memory", null=True, blank=True, on_delete=models.SET_NULL, related_name="nodes"
    )
    text = models.TextField(blank=True)
    timestamp = models.DateTimeField(null=True, blank=True)
    token_ids = models.JSONField(default=list)
    n_tokens = models.PositiveIntegerField(default=0)

    objects = NodeQuerySet.as_manager()

    class Meta:
        ordering = ["snapshot", "section", "index"]
        constraints = [
            # The engine addresses responses by (section, index).
            models.UniqueConstraint(
                fields=["snapshot", "section", "index"], name="node_unique_position"
            ),
            # A node is a message (role) or a memory (key), never both or neither.
            models.CheckConstraint(
                condition=(Q(role="") & ~Q(memory_key="")) | (~Q(role="") & Q(memory_key="")),
                name="node_is_message_xor_memory",
            ),
        ]

    def __str__(self):
        what = self.memory_key or self.role
        return f"{self.section}[{self.index}] {what}"

    @property
    def is_memory(self):
        return bool(self.memory_key)

    @property
    def is_response(self):
        return self.section == Section.CONVERSATION and self.role == "assistant"


class MemoryQuerySet(models.QuerySet):
    def due_for_scoring(self, now, max_age_seconds):
        cutoff = now - timedelta(seconds=max_age_seconds)
        return self.filter(Q(last_scored__isnull=True) | Q(last_scored__lte=cutoff))


class Memory(models.Model):
    """A memory key of an agent, across all its snapshots."""

    agent = models.ForeignKey("scoring.Agent", on_delete=models.CASCADE, related_name="memories")
    key = models.CharField(max_length=300)
    text = models.TextField(blank=True, help_text="The text last seen in a snapshot.")
    # None until the memory has been scored once: "never scored" is not "weight 0".
    weight = models.FloatField(null=True, blank=True)
    last_scored = models.DateTimeField(null=True, blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)

    objects = MemoryQuerySet.as_manager()

    class Meta:
        ordering = ["agent", "key"]
        verbose_name_plural = "memories"
        constraints = [
            models.UniqueConstraint(fields=["agent", "key"], name="memory_unique_key_per_agent")
        ]
        # The memories page's sorts (views/memories.py), a page at a time
        # with 50k memories: by key any case, by weight, by last scored.
        indexes = [
            models.Index(F("agent"), Lower("key"), name="memory_agent_lower_key"),
            models.Index(F("agent"), F("weight"), Lower("key"), name="memory_agent_weight"),
            models.Index(F("agent"), F("last_scored"), Lower("key"), name="memory_agent_last_scored"),
        ]

    def __str__(self):
        return self.key

    def record_score(self, score, *, run=None, responses=0, alpha=None, now=None):
        """Fold a new score into the weight (an exponentially weighted moving
        average; the first score becomes the weight) and keep it in the history.

        Once per run: a re-delivered task that scores the same memory again
        in the same run changes nothing. Returns the MemoryScore, or None when
        this run had already recorded one.
        """
        alpha = self.agent.weight_alpha if alpha is None else alpha
        now = now or timezone.now()
        with transaction.atomic():
            # Lock the row so two runs scoring this memory at once both count.
            memory = Memory.objects.select_for_update().get(pk=self.pk)
            weight = maths.ewma(memory.weight, score, alpha)
            try:
                with transaction.atomic():
                    entry = MemoryScore.objects.create(
                        memory=memory, run=run, score=score, weight=weight, responses=responses
                    )
            except IntegrityError:
                return None
            Memory.objects.filter(pk=self.pk).update(weight=weight, last_scored=now)
        self.weight, self.last_scored = weight, now
        return entry


class MemoryScore(models.Model):
    """One score of a memory and the weight it produced: its history."""

    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="scores")
    run = models.ForeignKey(
        "scoring.ScoringRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.FloatField()
    weight = models.FloatField(help_text="The memory's weight after this score.")
    responses = models.PositiveIntegerField(default=0, help_text="Responses in the window.")
    scored_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["memory", "scored_at"]
        indexes = [models.Index(fields=["memory", "scored_at"])]
        constraints = [
            # Memory.record_score relies on this: a run folds a memory's score
            # into its weight once, however often its task is delivered.
            models.UniqueConstraint(
                fields=["memory", "run"], condition=Q(run__isnull=False), name="memoryscore_once_per_run"
            )
        ]
