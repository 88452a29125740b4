"""Scoring runs and their calls, with the state machines of both.

A run: QUEUED -> RUNNING (mark_started, when a worker first takes it) ->
SUCCEEDED | PARTIAL | FAILED (finish, once no call is unfinished), or
CANCELLED from either active state (cancel). Each is a conditional update
on the active statuses, so a second attempt changes nothing.

A call: PENDING -> RUNNING (claimed) -> DONE | FAILED (stored), and RUNNING
with a lapsed claim is claimable again. Claiming and storing are on every
call's hot path, so they are plain SQL in scoring/engine/execution.py
(claim_calls, store); the calls compared with a failed baseline go
PENDING -> FAILED here (ScoringRun.abandon_comparisons).
"""

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from scoring import maths

from .activity import Activity


class Mode(models.TextChoices):
    FULL = "full", "full matrix"
    MEMORY = "memory", "one memory"
    INCREMENTAL = "incremental", "incremental"
    FINETUNE = "finetune", "fine-tune candidates"
    # Cells fitted to random ablations (issue 11): estimates, never exact deltas.
    ESTIMATE = "estimate", "estimate from ablations"
    # A call per group of keys, then exact leave-one-out inside the groups
    # that matter; flags memories that stand in for each other (issue 11).
    GROUPS = "groups", "groups, then members"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    # Finished, but some calls still failed after their retries: their cells
    # are marked failed, never zero.
    PARTIAL = "partial", "finished with failures"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


ACTIVE_STATUSES = [RunStatus.QUEUED, RunStatus.RUNNING]
# The error of a call never made because its baseline failed.
BASELINE_FAILED = "its baseline call failed"
# A cell row's columns, in the order of CellScore.scored_row and its kin.
CELL_COLUMNS = ["run_id", "memory_id", "response_id", "delta", "failed", "state"]


# Who started a run that no user started, by the actor_name its "started
# run" entry in the activity log carries: the command line says so, beat and
# the outbox are "system".
ORIGIN_WORDS = {"system": "background scoring"}


class ScoringRunQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE_STATUSES)


def label_origins(runs):
    """Set `started_by` on each run: its user's name, else what started it
    ("command line", "background scoring"), read from the activity log in one
    query rather than stored twice. Returns the runs."""
    runs = list(runs)
    names = Activity.actor_names("started run", [r for r in runs if r.created_by_id is None])
    for run in runs:
        if run.created_by_id is not None:
            run.started_by = run.created_by.get_username()
        else:
            name = names.get(str(run.pk), "system")
            run.started_by = ORIGIN_WORDS.get(name, name)
    return runs


class ScoringRun(models.Model):
    """One scoring job over a snapshot, in one of the four modes."""

    Mode = Mode
    Status = RunStatus

    agent = models.ForeignKey("scoring.Agent", on_delete=models.CASCADE, related_name="runs")
    snapshot = models.ForeignKey("scoring.Snapshot", on_delete=models.CASCADE, related_name="runs")
    mode = models.CharField(max_length=12, choices=Mode.choices)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)

    calls_total = models.PositiveIntegerField(default=0)
    calls_done = models.PositiveIntegerField(default=0)
    calls_failed = models.PositiveIntegerField(default=0)
    tokens_scored = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    # What the run found, written when it ends; its shape depends on the mode:
    # memory {"key", "importance", "responses"}; incremental {"scored": [...],
    # "skipped": [...]}; finetune {"responses", "candidates", "new"}; full
    # {"memories", "responses"}; estimate and groups: see their modes.
    result = models.JSONField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When its failed calls were last sent again (retry_failed): its time
    # since then is what the page counts, not the idle time before it.
    retried_at = models.DateTimeField(null=True, blank=True)
    # When its tasks were last sent to the workers: resume_stalled_runs waits a
    # claim's length after it, so a run queued behind busy workers is not sent twice.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ScoringRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["snapshot", "-created_at"])]
        permissions = [("start_run", "Can start and cancel scoring runs")]
        constraints = [
            models.CheckConstraint(
                condition=Q(calls_done__lte=F("calls_total")) & Q(calls_failed__lte=F("calls_total")),
                name="run_progress_within_total",
            )
        ]

    def __str__(self):
        return f"run {self.pk} ({self.get_mode_display()})"

    def get_mode_display(self):
        """The mode's label (Django's own method, kept), saying when a
        fine-tune run only measures (a re-score's): listed as "fine-tune
        candidates", it read as one that makes candidates."""
        if self.mode == Mode.FINETUNE and (self.params or {}).get("make_candidates") is False:
            return "fine-tune, measure only"
        return dict(Mode.choices).get(self.mode, self.mode)

    @property
    def is_active(self):
        return self.status in ACTIVE_STATUSES

    @property
    def progress(self):
        """Fraction of calls finished, done or failed, 0..1."""
        if not self.calls_total:
            return 1.0 if not self.is_active else 0.0
        return min(1.0, (self.calls_done + self.calls_failed) / self.calls_total)

    def shard_count(self):
        """Tasks the run is fanned out to: the agent's shards, never more than
        its concurrency (each task runs at least one call at a time) or its calls."""
        agent = self.agent
        return max(1, min(agent.score_shards, agent.score_concurrency, self.calls_total))

    def threads_for_shard(self, shard, shards):
        """This shard's share of the agent's concurrency (shares add up to it exactly)."""
        concurrency = self.agent.score_concurrency
        return concurrency // shards + (1 if shard < concurrency % shards else 0)

    def mark_enqueued(self):
        """Its tasks were sent to the workers just now (resume_stalled_runs waits after it)."""
        self.enqueued_at = timezone.now()
        ScoringRun.objects.filter(pk=self.pk).update(enqueued_at=self.enqueued_at)

    def mark_started(self):
        """QUEUED -> RUNNING as a worker first takes it. Returns whether the
        run is active (a cancelled or finished run has nothing to work on)."""
        # A run sent back to work (retry_failed) keeps when it first started.
        ScoringRun.objects.filter(pk=self.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=Coalesce(F("started_at"), timezone.now())
        )
        return ScoringRun.objects.active().filter(pk=self.pk).exists()

    def add_to_result(self, found):
        """Merge what a settled pair found into the result while the run goes on."""
        self.result = {**(self.result or {}), **found}
        ScoringRun.objects.filter(pk=self.pk).update(result=self.result)

    def add_calls(self, specs):
        """Add calls to a run under way (a mode that plans from results, the
        groups mode's stage 2), numbered after its calls so far and counted in
        calls_total. Call it with the run's row locked (results.settle): the
        count is what keeps the run from ending before they are done."""
        added = ScoreCall.objects.create_for(self, specs, first_seq=self.calls_total)
        ScoringRun.objects.filter(pk=self.pk).update(calls_total=F("calls_total") + added)
        self.calls_total += added
        return added

    def abandon_comparisons(self, baseline):
        """Nothing can be compared with a failed baseline: its calls not yet
        run fail at once (PENDING, or RUNNING with a lapsed claim -> FAILED),
        counted on the run in the same transaction as the store."""
        now = timezone.now()
        abandoned = ScoreCall.objects.filter(claimable_q(now), baseline=baseline).update(
            status=ScoreCall.Status.FAILED, error=BASELINE_FAILED, finished_at=now, claimed_until=None
        )
        if abandoned:
            ScoringRun.objects.filter(pk=self.pk).update(calls_failed=F("calls_failed") + abandoned)
            self.calls_failed += abandoned
        return abandoned

    def finish(self, *, any_failed, any_pair_done, error, result):
        """End the run: SUCCEEDED with no failed call, PARTIAL when some pair
        still compared, else FAILED. Returns False if it had already ended."""
        if not any_failed:
            status = RunStatus.SUCCEEDED
        elif any_pair_done:
            status = RunStatus.PARTIAL
        else:
            status = RunStatus.FAILED
        now = timezone.now()
        return bool(
            ScoringRun.objects.active().filter(pk=self.pk).update(
                status=status, finished_at=now, started_at=self.started_at or now, error=error, result=result,
            )
        )

    def retry_failed(self, by=None, *, actor_name=None, forget=()):
        """Send a run that ended with failed calls (PARTIAL or FAILED) back to
        work on them: they go back to pending with their claims counted from
        0, the run back to QUEUED, and the failed cells they left go (their
        pairs are settled afresh as they answer: a cell is failed or scored,
        never both). What succeeded is kept; `forget`: the keys of its result
        that count what failed (its mode's unshown_when_none). Returns how many
        calls; 0, with nothing changed, for a run that did not end so (the
        caller enqueues)."""
        with transaction.atomic():
            locked = ScoringRun.objects.select_for_update().filter(
                pk=self.pk, status__in=[RunStatus.PARTIAL, RunStatus.FAILED]).first()
            if locked is None:
                return 0
            again = ScoreCall.objects.filter(run=locked, status=ScoreCall.Status.FAILED).update(
                status=ScoreCall.Status.PENDING, attempts=0, error="", result=None, tokens=0, prompt_tokens=0,
                cached_tokens=None, computed_tokens=None, started_at=None, finished_at=None, claimed_until=None,
            )
            if not again:
                return 0
            CellScore.objects.filter(run=locked, failed=True).delete()
            # The counts of what failed go with it (its mode counts again as it ends).
            result = {k: v for k, v in (locked.result or {}).items() if k not in forget} or None
            ScoringRun.objects.filter(pk=locked.pk).update(
                status=RunStatus.QUEUED, calls_failed=F("calls_failed") - again, finished_at=None, error="",
                result=result, retried_at=timezone.now())
            who = by if by is not None and getattr(by, "is_authenticated", False) else None
            Activity.record(who, "retried the failed calls of", locked, actor_name=actor_name, calls=again)
        self.refresh_from_db()
        return again

    def resume(self, by=None, *, actor_name=None):
        """Send a cancelled run back to work on the calls it had not finished:
        they go back to pending (a result still in flight when it was
        cancelled was discarded; their claim counts go on, so such a late
        answer cannot be stored over a new claim's), the run back to QUEUED.
        What was done is kept. Returns how many calls; 0, with nothing
        changed, for a run that is not cancelled or has nothing left (the
        caller enqueues)."""
        with transaction.atomic():
            locked = ScoringRun.objects.select_for_update().filter(pk=self.pk, status=RunStatus.CANCELLED).first()
            if locked is None:
                return 0
            again = ScoreCall.objects.filter(run=locked).unfinished().update(
                status=ScoreCall.Status.PENDING, claimed_until=None, started_at=None)
            if not again:
                return 0
            ScoringRun.objects.filter(pk=locked.pk).update(
                status=RunStatus.QUEUED, finished_at=None, error="", cancelled_by=None, retried_at=timezone.now())
            who = by if by is not None and getattr(by, "is_authenticated", False) else None
            Activity.record(who, "resumed run", locked, actor_name=actor_name, calls=again)
        self.refresh_from_db()
        return again

    def cancel(self, by=None, *, actor_name=None, why=""):
        """Stop an active run: workers stop claiming its calls and discard
        results still in flight. Returns False if the run had already ended.
        `by`: the user who cancels it, or None (then named by actor_name, e.g.
        "command line", as in the activity log); `why` is added to its error."""
        now = timezone.now()
        who = by if by is not None and getattr(by, "is_authenticated", False) else None
        name = who.get_username() if who else actor_name or "system"
        cancelled = ScoringRun.objects.filter(pk=self.pk, status__in=ACTIVE_STATUSES).update(
            status=RunStatus.CANCELLED,
            cancelled_by=who,
            finished_at=now,
            error=f"cancelled by {name}" + (f": {why}" if why else ""),
        )
        self.refresh_from_db()
        if cancelled:
            # Why, in the log too ("interrupted (Ctrl-C) where it ran"): the run's page is not the only record.
            Activity.record(who, "cancelled run", self, actor_name=name, mode=self.mode,
                            **({"why": why} if why else {}))
        return bool(cancelled)


class ScoreCallQuerySet(models.QuerySet):
    def create_for(self, run, specs, *, first_seq=0):
        """Create a run's calls from plan specs (scoring.modes.CallSpec: filter,
        range, memory, removed_keys, baseline) numbered from first_seq; returns
        how many. A spec's baseline is the index in `specs` of the call it is
        compared with, or a call already saved; None makes it a baseline."""
        # Baselines are saved one by one: the calls compared with them need their ids.
        saved = {}
        for i, spec in enumerate(specs):
            if spec.baseline is None:
                saved[i] = self.create(
                    run=run, seq=first_seq + i, filter=spec.filter, memory=spec.memory,
                    range_start=spec.range_start, range_end=spec.range_end, removed_keys=list(spec.removed_keys),
                )
        _insert_calls([
            {"run": run.pk, "seq": first_seq + i, "filter": spec.filter,
             "memory": spec.memory.pk if spec.memory is not None else None,
             "range_start": spec.range_start, "range_end": spec.range_end,
             "removed_keys": list(spec.removed_keys),
             "baseline": saved[spec.baseline].pk if isinstance(spec.baseline, int) else spec.baseline.pk}
            for i, spec in enumerate(specs) if i not in saved
        ])
        return len(specs)

    def unfinished(self):
        return self.filter(status__in=[ScoreCall.Status.PENDING, ScoreCall.Status.RUNNING])

    def claimable(self, now):
        """Calls a worker may take: never claimed, or claimed by a worker that
        let its claim lapse (it died or hung)."""
        return self.filter(claimable_q(now))

    def live(self, now):
        """Calls a worker is working on right now."""
        return self.filter(status=ScoreCall.Status.RUNNING, claimed_until__gt=now)


def _insert_calls(values):
    """INSERT calls given as {field name: value} (the rest their defaults),
    many rows a statement.

    Not bulk_create: it builds a model instance for each call and compiles
    every value of every field apart, 24 of the 35 ms that starting a full
    matrix of 201 calls took. The values sent are those it would send (each
    field's get_db_prep_save; the defaults' prepared once)."""
    if not values:
        return
    # The connection itself, not django.db.connection: that proxy finds it
    # anew (asgiref's Local) for each of the thousands of values.
    db = connections[DEFAULT_DB_ALIAS]
    fields = [f for f in ScoreCall._meta.concrete_fields if not f.primary_key]
    given = values[0].keys()
    defaults = {f.name: f.get_db_prep_save(f.get_default(), db) for f in fields if f.name not in given}
    rows = [
        [defaults[f.name] if f.name in defaults else f.get_db_prep_save(call[f.name], db) for f in fields]
        for call in values
    ]
    insert_many(db, ScoreCall._meta.db_table, [f.column for f in fields], rows)


def insert_many(db, table, columns, rows, suffix=""):
    """INSERT `rows` (sequences of values in `columns` order), as many a
    statement as the database's parameter limit allows (SQLite: 999), a
    thousand at most: executemany's work per row took twice the CPU."""
    limit = db.features.max_query_params
    size = min(1000, limit // len(columns)) if limit else 1000
    names = ", ".join(db.ops.quote_name(c) for c in columns)
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with db.cursor() as cursor:
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            cursor.execute(
                f"INSERT INTO {db.ops.quote_name(table)} ({names}) VALUES {', '.join([row] * len(chunk))}{suffix}",
                [value for values in chunk for value in values],
            )


def claimable_q(now):
    # Only columns of the call itself: the claim's conditional UPDATE must not
    # join, so PostgreSQL re-checks exactly this condition on a contended row.
    return Q(status=ScoreCall.Status.PENDING) | Q(
        status=ScoreCall.Status.RUNNING, claimed_until__lt=now
    )


class ScoreCall(models.Model):
    """One call to the server's /score: a unit of work, claimed by one worker at a time.

    A call scores the conversation range [range_start, range_end) with one
    filter applied; a call that has a baseline is compared with it to give
    divergences.
    """

    class Filter(models.TextChoices):
        NONE = "none", "nothing removed"
        SKIP_KEY = "skip_key", "one memory key removed"
        SKIP_ALL = "skip_all", "all memories removed"
        # An ablation of the estimate mode: the keys in removed_keys.
        SKIP_KEYS = "skip_keys", "a set of keys removed"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="calls")
    seq = models.PositiveIntegerField()
    filter = models.CharField(max_length=10, choices=Filter.choices, default=Filter.NONE)
    memory = models.ForeignKey(
        "scoring.Memory", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    range_start = models.PositiveIntegerField(default=0)
    range_end = models.PositiveIntegerField()
    baseline = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="compared"
    )
    # The memory keys a skip_keys call leaves out (its ablation mask), in context order.
    removed_keys = models.JSONField(default=list, blank=True)

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The server's total_logprob per assistant response in the range, in
    # order; null for a response before the left-out memory (a causal window:
    # not asked for, its cell is "unaffected").
    result = models.JSONField(null=True, blank=True)
    # Tokens the server was asked to compute: from the first position that can
    # differ from the baseline to the end (the whole prompt where the backend
    # cannot start later, vLLM); prompt_tokens: the whole prompt, what a naive
    # call computes; cached_tokens: what the server says it served from its
    # prefix cache, computed_tokens what it says it ran the model over (None
    # where it does not say; vLLM runs every prompt token).
    tokens = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(null=True, blank=True)
    computed_tokens = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScoreCallQuerySet.as_manager()

    class Meta:
        ordering = ["run", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["run", "seq"], name="call_unique_seq_per_run"),
            # Each memory is left out at most once per baseline.
            models.UniqueConstraint(
                fields=["run", "baseline", "memory"],
                condition=Q(filter="skip_key"),
                name="call_unique_key_per_baseline",
            ),
        ]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self):
        return f"call {self.seq} of run {self.run_id}"


class CellState(models.TextChoices):
    SCORED = "scored", "scored"
    # Before the memory's first appearance: a causal model's prediction of it
    # cannot change, so the delta is exactly zero and was not asked for.
    UNAFFECTED = "unaffected", "before the memory: unaffected"
    # The call (or its baseline) failed: no value, never zero.
    FAILED = "failed", "failed"


class CellScore(models.Model):
    """How much one response depends on one memory, in one run."""

    State = CellState

    # No index of its own: cell_unique_per_run_memory_response begins with
    # the run and serves every lookup by run; a second index only slowed the
    # inserts (a full matrix writes a cell per memory and response).
    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="cells", db_index=False)
    memory = models.ForeignKey("scoring.Memory", on_delete=models.CASCADE, related_name="cells")
    response = models.ForeignKey("scoring.Node", on_delete=models.CASCADE, related_name="cells")
    # Signed: baseline logprob minus logprob without the memory. Negative means
    # the memory made the response *less* likely (harmful). None when failed.
    delta = models.FloatField(null=True, blank=True)
    failed = models.BooleanField(default=False)
    # failed is kept beside it (state == FAILED), so every aggregate over
    # failed=False counts an unaffected cell as the exact zero it is.
    state = models.CharField(max_length=10, choices=CellState.choices, default=CellState.SCORED)

    class Meta:
        constraints = [
            # Re-delivered tasks rely on this to never store a cell twice.
            models.UniqueConstraint(
                fields=["run", "memory", "response"], name="cell_unique_per_run_memory_response"
            ),
            models.CheckConstraint(
                condition=Q(failed=True, delta__isnull=True) | Q(failed=False, delta__isnull=False),
                name="cell_failed_xor_value",
            ),
            # A failed cell is never unaffected, and an unaffected one is exactly zero.
            models.CheckConstraint(
                condition=Q(state=CellState.FAILED, failed=True)
                | Q(state=CellState.SCORED, failed=False)
                | Q(state=CellState.UNAFFECTED, failed=False, delta=0.0),
                name="cell_state_matches_value",
            ),
        ]

    @property
    def divergence(self):
        """The importance: the clamped divergence, None if the cell failed."""
        return maths.cell_importance(None if self.failed else self.delta)

    # A cell for insert_rows, in each of its states: the one place that
    # pairs a state with its value (cell_state_matches_value checks the same).
    @staticmethod
    def scored_row(run_id, memory_id, response_id, delta):
        return (run_id, memory_id, response_id, delta, False, CellState.SCORED.value)

    @staticmethod
    def unaffected_row(run_id, memory_id, response_id):
        return (run_id, memory_id, response_id, 0.0, False, CellState.UNAFFECTED.value)

    @staticmethod
    def failed_row(run_id, memory_id, response_id):
        return (run_id, memory_id, response_id, None, True, CellState.FAILED.value)

    @staticmethod
    def insert_rows(rows):
        """Insert cells given as (run_id, memory_id, response_id, delta, failed,
        state) tuples (scored_row, unaffected_row, failed_row), skipping any
        already stored.

        ON CONFLICT DO NOTHING relies on cell_unique_per_run_memory_response: a
        pair settled twice never stores a cell twice. Plain SQL, as a full
        matrix writes up to a million cells and the ORM's bulk_create spends
        far longer building objects and SQL than the database spends inserting.
        On PostgreSQL the six columns go as six arrays (unnest): 8,000 cells
        took 117 ms of memscore's CPU that way, 250-320 ms as rows of
        parameters and 310-325 ms with executemany. Elsewhere insert_many.
        """
        if not rows:
            return
        if connection.vendor != "postgresql":
            insert_many(connection, CellScore._meta.db_table, CELL_COLUMNS, rows, " ON CONFLICT DO NOTHING")
            return
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {connection.ops.quote_name(CellScore._meta.db_table)} ({', '.join(CELL_COLUMNS)}) "
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::float8[], %s::boolean[], "
                "%s::varchar[]) ON CONFLICT DO NOTHING",
                [list(column) for column in zip(*rows)],
            )
