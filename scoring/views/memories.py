"""An agent's memories: which matter, which never do, which do harm."""

from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Case, Count, F, FloatField, Max, Min, Q, Sum, Value, When
from django.shortcuts import render
from django.urls import path

from scoring.access import get_agent_for_user, get_memory_for_user, require_perm
from scoring.models import CellScore, MemoryScore, Node, ScoringRun
from scoring.models.runs import HARMFUL_DELTA, ZERO_THRESHOLD, Mode, RunStatus

# "Never matters": no cell above ZERO_THRESHOLD over at least this many
# scored responses (fewer responses are not enough evidence).
NEVER_MATTERS_MIN_RESPONSES = 10
# "Harmful": one response predicted this much better without the memory, or
# the signed deltas summing to less than minus this.

SORTS = {
    "key": "key",
    "weight": "weight",
    "last_scored": "last scored",
    "importance_sum": "importance (sum)",
    "importance_max": "importance (max)",
}
FLAGS = {"never": "never matters", "harmful": "harmful"}
FINISHED = [RunStatus.SUCCEEDED, RunStatus.PARTIAL]


def latest_full_run(agent):
    return (
        ScoringRun.objects.filter(agent=agent, mode=Mode.FULL, status__in=FINISHED)
        .order_by("-finished_at", "-id")
        .first()
    )


def _importance():
    """A cell's clamped importance in SQL: delta above the threshold, else 0."""
    return Case(
        When(delta__gt=ZERO_THRESHOLD, then=F("delta")), default=Value(0.0), output_field=FloatField()
    )


def run_memory_stats(run):
    """{memory_id: stats} over one finished run's cells, one grouped query, cached."""
    if run is None:
        return {}
    key = f"memory-stats:v1:{run.pk}:{run.status}:{run.calls_done}:{run.calls_failed}"
    stats = cache.get(key)
    if stats is None:
        rows = (
            CellScore.objects.filter(run=run)
            .values("memory_id")
            .annotate(
                importance_sum=Sum(_importance(), filter=Q(failed=False)),
                importance_max=Max(_importance(), filter=Q(failed=False)),
                min_delta=Min("delta"),
                net=Sum("delta"),
                scored=Count("id", filter=Q(failed=False)),
                failed_cells=Count("id", filter=Q(failed=True)),
            )
        )
        stats = {row.pop("memory_id"): row for row in rows}
        for row in stats.values():
            row["flags"] = flags_for(row)
        cache.set(key, stats, 24 * 3600)
    return stats


def flags_for(row):
    flags = []
    if row["scored"] >= NEVER_MATTERS_MIN_RESPONSES and (row["importance_max"] or 0) <= ZERO_THRESHOLD:
        flags.append("never")
    # Net, not any one cell: leaving out any memory makes a few unrelated
    # responses slightly more likely, so single cells below zero are common.
    if row["scored"] and row["net"] < -HARMFUL_DELTA:
        flags.append("harmful")
    return flags


def memory_list(request, agent_id):
    agent = get_agent_for_user(request, agent_id)
    require_perm(request, "scoring.view_memory")
    run = latest_full_run(agent)
    stats = run_memory_stats(run)

    sort = request.GET.get("sort", "-importance_sum" if run else "key")
    sort = sort if sort.lstrip("-") in SORTS else "key"
    flag = request.GET.get("flag", "")
    search = request.GET.get("q", "").strip()

    memories = agent.memories.all()
    if search:
        memories = memories.filter(Q(key__icontains=search) | Q(text__icontains=search))
    rows = []
    for memory in memories.only("id", "key", "weight", "last_scored", "text"):
        memory.stats = stats.get(memory.pk)
        memory.flags = memory.stats["flags"] if memory.stats else []
        if flag in FLAGS and flag not in memory.flags:
            continue
        rows.append(memory)
    rows = _sorted(rows, sort)

    page = Paginator(rows, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "scoring/memory_list.html",
        {
            "agent": agent,
            "run": run,
            "page": page,
            "sort": sort,
            "flag": flag,
            "search": search,
            "flags": FLAGS,
            "query": query.urlencode(),
            "columns": _sort_links(sort, _without(request.GET, "sort", "page")),
            "counts": {
                name: sum(1 for s in stats.values() if name in s["flags"]) for name in FLAGS
            },
            "never_min": NEVER_MATTERS_MIN_RESPONSES,
            "harmful_delta": HARMFUL_DELTA,
            "zero_threshold": ZERO_THRESHOLD,
        },
    )


def _sorted(rows, sort):
    """Sort in Python: the importance columns come from the run's cells, not the table.

    "-name" sorts descending. Memories without a value (never scored, not in
    the run) go last either way, by key.
    """
    name = sort.lstrip("-")

    def value(memory):
        if name == "key":
            return memory.key.lower()
        if name in ("weight", "last_scored"):
            return getattr(memory, name)
        return memory.stats[name] if memory.stats else None

    present = [m for m in rows if value(m) is not None]
    absent = [m for m in rows if value(m) is None]
    present.sort(key=value, reverse=sort.startswith("-"))
    absent.sort(key=lambda m: m.key.lower())
    return present + absent


def _sort_links(current, base_query):
    """Header links: a column sorts descending first (key ascending), then flips."""
    links = {}
    for name in SORTS:
        first = name if name == "key" else f"-{name}"
        if current.lstrip("-") == name:
            target = name if current.startswith("-") else f"-{name}"
            direction = "descending" if current.startswith("-") else "ascending"
        else:
            target, direction = first, ""
        query = f"{base_query}&sort={target}" if base_query else f"sort={target}"
        links[name] = {"label": SORTS[name], "query": query, "direction": direction}
    return links


def _without(params, *names):
    query = params.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


def memory_detail(request, pk):
    memory = get_memory_for_user(request, pk)
    run = latest_full_run(memory.agent)
    stats = run_memory_stats(run).get(memory.pk)

    appearances = (
        Node.objects.filter(memory=memory)
        .select_related("snapshot")
        .order_by("-snapshot__taken_at", "section", "index")[:50]
    )
    top_cells = harmful_cells = []
    if run is not None:
        cells = CellScore.objects.filter(run=run, memory=memory, failed=False).select_related("response")
        top_cells = list(cells.filter(delta__gt=ZERO_THRESHOLD).order_by("-delta")[:15])
        harmful_cells = list(cells.filter(delta__lt=-ZERO_THRESHOLD).order_by("delta")[:10])

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
            "stats": stats,
            "flags": stats["flags"] if stats else [],
            "appearances": appearances,
            "top_cells": top_cells,
            "harmful_cells": harmful_cells,
            "history": history[-20:][::-1],
            "chart": chart,
            "never_min": NEVER_MATTERS_MIN_RESPONSES,
            "harmful_delta": HARMFUL_DELTA,
        },
    )


urlpatterns = [
    path("agents/<int:agent_id>/memories/", memory_list, name="memory_list"),
    path("memories/<int:pk>/", memory_detail, name="memory_detail"),
]
