"""An agent's memories: which matter, which never do, which do harm.

Importance and flags come from the cells of the agent's latest finished full
run, aggregated in SQL; every formula is scoring.maths's, and the SQL that
repeats one says which (tests/test_maths_mirrors.py checks they agree).
"""

from django.core.paginator import Paginator
from django.db.models import Case, Count, F, FloatField, Max, Min, Q, Sum, Value, When
from django.db.models.functions import Lower
from django.shortcuts import render
from django.urls import path

from scoring import maths
from scoring.access import get_agent_for_user, get_memory_for_user, require_perm
from scoring.filters import MEMORY_FLAGS, MemoryFilter, filter_notice, filtered, typed_choices, typed_values
from scoring.heatmap.matrix import memory_texts, response_numbers
from scoring.heatmap.payload import through_cache
from scoring.models import CellScore, Memory, MemoryScore, Node, ScoringRun, Snapshot, TrainJob
from scoring.models.runs import CellState, Mode, RunStatus
from scoring.modes.groups import redundancy_by_key

SORTS = {
    "key": "key",
    "weight": "weight",
    "last_scored": "last scored",
    "importance_sum": "importance (sum)",
    "importance_max": "importance (max)",
}
FINISHED = [RunStatus.SUCCEEDED, RunStatus.PARTIAL]


def latest_full_run(agent):
    # A run of some keys only (an estimate's top memories scored exactly) is not the agent's matrix.
    return (
        ScoringRun.objects.filter(agent=agent, mode=Mode.FULL, status__in=FINISHED)
        .exclude(params__has_key="keys")
        .order_by("-finished_at", "-id")
        .first()
    )


def last_complete_run(agent, run):
    """Where `run` (the latest full run) left memories unknown (its calls
    failed): the latest earlier full run that failed none, or None."""
    if run is None or not run.calls_failed:
        return None
    return (
        ScoringRun.objects.filter(
            agent=agent, mode=Mode.FULL, status=RunStatus.SUCCEEDED, finished_at__lt=run.finished_at,
        ).exclude(params__has_key="keys")
        .order_by("-finished_at", "-id")
        .first()
    )


def latest_estimate_run(agent):
    """The agent's latest finished estimate run: its cells are estimates and never
    feed this page's importance (exact runs only); the page points to it, labelled."""
    return (
        ScoringRun.objects.filter(agent=agent, mode=Mode.ESTIMATE, status__in=FINISHED)
        .order_by("-finished_at", "-id")
        .first()
    )


def latest_groups_run(agent):
    """The agent's latest finished groups run: where its redundancy flags
    (memories that stand in for each other) come from, labelled with it."""
    return (
        ScoringRun.objects.filter(agent=agent, mode=Mode.GROUPS, status__in=FINISHED)
        .order_by("-finished_at", "-id")
        .first()
    )


def background_skips(agent):
    """(the agent's latest finished incremental run, {key: why it skipped
    that memory}): why a memory has no weight yet, where background scoring
    passed it over (too recent, no response after it)."""
    run = (
        ScoringRun.objects.filter(agent=agent, mode=Mode.INCREMENTAL, status__in=FINISHED)
        .order_by("-finished_at", "-id")
        .only("id", "finished_at", "result")
        .first()
    )
    if run is None:
        return None, {}
    return run, {s["key"]: s["reason"] for s in (run.result or {}).get("skipped", [])}


def importance_sql():
    """A cell's importance in SQL; mirrors scoring.maths.cell_importance (a
    failed cell's NULL delta falls to 0 here, so callers filter failed=False)."""
    return Case(
        When(delta__gt=maths.ZERO_THRESHOLD, then=F("delta")), default=Value(0.0), output_field=FloatField()
    )


def memory_stats_query(run):
    """One row per memory of the run's cells; each aggregate mirrors a
    scoring.maths function over the memory's deltas. SQL's SUM and MAX of no
    rows are NULL where maths's sums give 0: read them only when scored > 0."""
    scored = Q(failed=False)
    return (
        CellScore.objects.filter(run=run)
        .values("memory_id")
        .annotate(
            importance_sum=Sum(importance_sql(), filter=scored),  # mirrors maths.importance_sum
            importance_max=Max(importance_sql(), filter=scored),  # mirrors maths.importance_max
            min_delta=Min("delta"),
            net=Sum("delta"),  # mirrors maths.net_delta (a failed cell's delta is NULL)
            scored=Count("id", filter=scored),
            failed_cells=Count("id", filter=Q(failed=True)),
            measured=Count("id", filter=Q(state=CellState.SCORED)),
        )
    )


def run_memory_stats(run):
    """{memory_id: stats} over one finished run's cells, one grouped query, cached."""
    if run is None:
        return {}
    key = f"memory-stats:v2:{run.pk}:{run.status}:{run.calls_done}:{run.calls_failed}"
    return through_cache(key, lambda: _memory_stats(run), 24 * 3600)


def _memory_stats(run):
    stats = {row.pop("memory_id"): row for row in memory_stats_query(run)}
    for row in stats.values():
        if maths.importance_unknown(row["failed_cells"], row["measured"]):
            row.update(scored=0, importance_sum=None, importance_max=None, net=None)
        row["flags"] = maths.memory_flags(row["scored"], row["importance_max"], row["net"])
    return stats


def trained_since(agent, run, memories):
    """What on a memories page predates the agent's latest training: the job
    (None when nothing does), whether the run's importances do, and how many
    of `memories`' weights were last scored before it. A trained model needs
    its memories differently: those numbers describe the model before it."""
    scored = memories.filter(last_scored__isnull=False).aggregate(oldest=Min("last_scored"))["oldest"]
    measured = [when for when in (run and (run.started_at or run.created_at), scored) if when]
    job = TrainJob.objects.succeeded_after(agent.pk, min(measured)).first() if measured else None
    if job is None:
        return None
    return {
        "job": job,
        "run": bool(run) and (run.started_at or run.created_at) < job.finished_at,
        "weights": memories.filter(last_scored__lt=job.finished_at).count(),
        "latest_snapshot_id": Snapshot.objects.filter(agent=agent).order_by("-taken_at", "-pk")
        .values_list("pk", flat=True).first(),
    }


def memory_list(request, agent_id):
    agent = get_agent_for_user(request, agent_id)
    require_perm(request, "scoring.view_memory")
    run = latest_full_run(agent)
    stats = run_memory_stats(run)
    memory_filter = MemoryFilter(
        request.GET or None,
        # Not agent.memories: that manager reads each row's deferred agent_id
        # (one query per memory). Model ordering joins the agent: not needed.
        Memory.objects.filter(agent=agent).only("id", "key", "weight", "last_scored", "text").order_by(),
        flags_by_memory={pk: s["flags"] for pk, s in stats.items()},
    )
    sort = request.GET.get("sort", "-importance_sum" if run else "key")
    sort = sort if sort.lstrip("-") in SORTS else "key"

    page = Paginator(SortedMemories(filtered(memory_filter), sort, stats), 100).get_page(request.GET.get("page"))
    # The text the run scored, shown when the memory's current text differs (issue 12).
    scored_texts = memory_texts(run.snapshot_id, [m.pk for m in page.object_list]) if run else {}
    groups_run = latest_groups_run(agent)
    redundancy = redundancy_by_key(groups_run)
    _, skips = background_skips(agent)
    for memory in page.object_list:
        memory.skipped = skips.get(memory.key)
        memory.redundant = redundancy.get(memory.key, [])
        memory.stats = stats.get(memory.pk)
        memory.flags = memory.stats["flags"] if memory.stats else []
        memory.scored_text = scored_texts.get(memory.pk)
    typed = typed_values(memory_filter)
    return render(
        request,
        "scoring/memory_list.html",
        {
            "agent": agent,
            "run": run,
            "trained": trained_since(agent, run, Memory.objects.filter(agent=agent)),
            "unknown": sum(1 for s in stats.values() if maths.importance_unknown(s["failed_cells"], s["measured"])),
            "complete_run": last_complete_run(agent, run),
            "estimate_run": latest_estimate_run(agent),
            "groups_run": groups_run,
            "page": page,
            "sort": sort,
            "form": memory_filter.form,
            "flag": typed["flag"],
            "search": typed["q"],
            "flag_choices": typed_choices(MEMORY_FLAGS.items(), typed["flag"]),
            **filter_notice(request, memory_filter),
            "columns": _sort_columns(sort),
            "counts": {name: sum(1 for s in stats.values() if name in s["flags"]) for name in MEMORY_FLAGS},
            "never_min": maths.NEVER_MATTERS_MIN_RESPONSES,
            "harmful_nats": maths.HARMFUL_NATS,
            "zero_threshold": maths.ZERO_THRESHOLD,
        },
    )


class SortedMemories:
    """The filtered memories in the chosen order, read a page at a time.

    "-name" sorts descending. Memories without a value (never scored, not in
    the run) go last either way, by key. The table's columns sort in SQL; the
    importance columns come from the run's (cached) cells, so only the run's
    memories are ordered in Python and the rest follow from SQL by key: a page
    reads its own rows, never all of an agent's (33k memories took 15 s).
    """

    def __init__(self, memories, sort, stats):
        self.memories, self.sort, self.stats = memories, sort, stats
        self.name, self.descending = sort.lstrip("-"), sort.startswith("-")
        self._ranked = None

    def count(self):
        return self.memories.count()

    def __len__(self):
        return self.count()

    def __getitem__(self, bounds):
        if self.name in ("key", "weight", "last_scored"):
            return list(self.memories.order_by(*self._sql_order())[bounds])
        ranked = self._ranked_ids()
        start, stop = bounds.start or 0, bounds.stop
        ids = ranked[start:stop]
        rows = self.memories.in_bulk(ids)
        found = [rows[pk] for pk in ids]
        if stop > len(ranked):
            rest = self.memories.exclude(pk__in=ranked).order_by(Lower("key"))
            found += list(rest[max(0, start - len(ranked)):stop - len(ranked)])
        return found

    def _sql_order(self):
        by_key = Lower("key")
        if self.name == "key":
            return [by_key.desc() if self.descending else by_key.asc()]
        column = F(self.name)
        first = column.desc(nulls_last=True) if self.descending else column.asc(nulls_last=True)
        return [first, by_key]

    def _ranked_ids(self):
        """Ids of the filtered memories that have a value in the run, in order."""
        if self._ranked is None:
            valued = [pk for pk, s in self.stats.items() if s[self.name] is not None]
            keys = dict(self.memories.filter(pk__in=valued).order_by().values_list("pk", "key"))
            # By key, then (stable, either way round) by value: ties keep key order.
            ranked = sorted(keys, key=lambda pk: keys[pk].lower())
            ranked.sort(key=lambda pk: self.stats[pk][self.name], reverse=self.descending)
            self._ranked = ranked
        return self._ranked


def _sort_columns(current):
    """Header links' targets (the template builds them with {% querystring %}):
    a column sorts descending first (key ascending), then flips."""
    columns = {}
    for name, label in SORTS.items():
        if current.lstrip("-") == name:
            descending = current.startswith("-")
            target = name if descending else f"-{name}"
            direction = "descending" if descending else "ascending"
        else:
            target, direction = (name if name == "key" else f"-{name}"), ""
        columns[name] = {"label": label, "sort": target, "direction": direction}
    return columns


def memory_detail(request, pk):
    memory = get_memory_for_user(request, pk)
    run = latest_full_run(memory.agent)
    stats = run_memory_stats(run).get(memory.pk)

    appearances = (
        Node.objects.filter(memory=memory)
        .select_related("snapshot")
        .in_context_order("-snapshot__taken_at")[:50]
    )
    top_cells = better_without_cells = []
    failed_cells = scored_cells = 0
    if run is not None:
        counts = CellScore.objects.filter(run=run, memory=memory).aggregate(
            n_failed=Count("pk", filter=Q(failed=True)), n_scored=Count("pk", filter=Q(failed=False)),
            n_measured=Count("pk", filter=Q(state=CellState.SCORED)))
        failed_cells, scored_cells = counts["n_failed"], counts["n_scored"]
        if maths.importance_unknown(failed_cells, counts["n_measured"]):
            scored_cells = 0
        cells = CellScore.objects.filter(run=run, memory=memory, failed=False).select_related("response")
        # mirrors maths.cell_importance(delta) > 0
        top_cells = list(cells.filter(delta__gt=maths.ZERO_THRESHOLD).order_by("-delta")[:15])
        # mirrors maths.is_better_without
        better_without_cells = list(cells.filter(delta__lt=-maths.ZERO_THRESHOLD).order_by("delta")[:10])
        for cell in better_without_cells:
            cell.harmful = maths.is_harmful(cell.delta)
        numbers = response_numbers(run.snapshot_id, [c.response.index for c in top_cells + better_without_cells])
        for cell in top_cells + better_without_cells:
            cell.response_number = numbers[cell.response.index]

    groups_run = latest_groups_run(memory.agent)
    background_run, skips = background_skips(memory.agent)

    history = list(
        MemoryScore.objects.filter(memory=memory)
        .order_by("scored_at")
        .values("scored_at", "score", "weight", "run_id", "responses")
    )
    chart = [
        {"t": h["scored_at"].isoformat(), "score": h["score"], "weight": h["weight"]} for h in history
    ]
    return render(
        request,
        "scoring/memory_detail.html",
        {
            "memory": memory,
            "agent": memory.agent,
            "run": run,
            "trained": trained_since(memory.agent, run, Memory.objects.filter(pk=memory.pk)),
            "scored_text": memory_texts(run.snapshot_id, [memory.pk]).get(memory.pk) if run else None,
            "stats": stats,
            "flags": stats["flags"] if stats else [],
            "groups_run": groups_run,
            "redundant": redundancy_by_key(groups_run).get(memory.key, []),
            "background_run": background_run,
            "skipped": skips.get(memory.key),
            "appearances": appearances,
            "top_cells": top_cells,
            "better_without_cells": better_without_cells,
            # A failed cell is unknown: "no response depends on it" is said of scored ones only.
            "failed_cells": failed_cells,
            "scored_cells": scored_cells,
            "history": history[-20:][::-1],
            "chart": chart,
            "never_min": maths.NEVER_MATTERS_MIN_RESPONSES,
            "harmful_nats": maths.HARMFUL_NATS,
        },
    )


urlpatterns = [
    path("agents/<int:agent_id>/memories/", memory_list, name="memory_list"),
    path("memories/<int:pk>/", memory_detail, name="memory_detail"),
]
