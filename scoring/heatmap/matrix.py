"""A run's memories × responses matrix, read in bulk for the heatmap and exports.

Built for 500 memories × 2,000 responses: one values_list query for the
cells, placed into numpy arrays, never a model instance per cell.
"""

import numpy as np
from django.conf import settings
from django.db import connection

from scoring.context.tokens import snapshot_tokens
from scoring.models import CellScore, Memory, Node, ScoreCall, Section
from scoring.models.runs import Mode


def load_matrix(run, *, cells=True):
    """The run's matrix as plain data.

    {"memories": [{"id", "key"}] in order of first appearance in the
     snapshot (identity, then conversation), whatever order the calls were
     made in (a groups run adds its members' calls after its group calls),
     "responses": [{"id", "number", "index", "text"}] the scored responses
     in conversation order: "number" k means the k-th assistant response of
     the snapshot (1-based, "response #k" on every page and export), "index"
     is its conversation entry,
     "deltas": one list per memory, one value per response: the signed
     delta (baseline minus without), or None when the cell failed or is
     missing}
    """
    calls = list(
        ScoreCall.objects.filter(run=run, filter=ScoreCall.Filter.SKIP_KEY)
        .order_by("seq")
        .values_list("memory_id", "memory__key", "range_start", "range_end")
    )
    memories, row_of, ranges = [], {}, []
    for memory_id, key, start, end in calls:
        ranges.append((start, end))
        if memory_id not in row_of:
            row_of[memory_id] = len(memories)
            memories.append({"id": memory_id, "key": key})
    # An estimate's calls each leave out several keys: its rows are every memory of the snapshot.
    ablation = run.mode == Mode.ESTIMATE and ScoreCall.objects.filter(
        run=run, filter=ScoreCall.Filter.SKIP_KEYS).values_list("range_start", "range_end").first()
    if ablation:
        ranges.append(ablation)
        keys = Node.objects.filter(snapshot_id=run.snapshot_id, section__in=[Section.IDENTITY, Section.CONVERSATION],
                                   memory_key__gt="").order_by().values_list("memory_key", flat=True).distinct()
        for memory_id, key in Memory.objects.filter(agent_id=run.agent_id, key__in=list(keys)).values_list("id", "key"):
            if memory_id not in row_of:
                row_of[memory_id] = len(memories)
                memories.append({"id": memory_id, "key": key})
    memories = _in_context_order(run.snapshot_id, memories)

    responses = []
    if ranges:
        lo = min(start for start, _ in ranges)
        hi = max(end for _, end in ranges)
        snapshot_responses = Node.objects.responses().filter(snapshot_id=run.snapshot_id)
        # A full run starts at 0: only a windowed run pays for this count.
        before = snapshot_responses.filter(index__lt=lo).count() if lo else 0
        rows = (
            snapshot_responses.filter(index__gte=lo, index__lt=hi)
            .order_by("index")
            .values_list("id", "index", "text")
        )
        for number, (node_id, index, text) in enumerate(rows, start=before + 1):
            # Incremental runs score separate windows: keep only covered responses.
            if any(start <= index < end for start, end in ranges):
                responses.append({"id": node_id, "number": number, "index": index, "text": text})

    if not cells:
        return {"memories": memories, "responses": responses}
    return {"memories": memories, "responses": responses, "deltas": _nested(cell_arrays(run, memories, responses)[0])}


def load_matrix_arrays(run):
    """load_matrix with numpy arrays instead of nested lists.

    Returns (memories, responses, deltas, failed): deltas is a float64
    (memories × responses) array with NaN where there is no value (failed or
    not scored yet); failed is a boolean array of the cells that failed.
    """
    matrix = load_matrix(run, cells=False)
    deltas, failed = cell_arrays(run, matrix["memories"], matrix["responses"])
    return matrix["memories"], matrix["responses"], deltas, failed


def load_matrix_states(run):
    """load_matrix_arrays with each cell's state instead of the failed array:
    (memories, responses, deltas, states), states a uint8 array of the codes
    below (an unaffected cell's delta is its exact 0). A cell with no row
    takes its state from its memory's windows (window_states)."""
    matrix = load_matrix(run, cells=False)
    memories, responses = matrix["memories"], matrix["responses"]
    deltas, failed, unaffected = _placed(run, memories, responses)
    states = np.full(deltas.shape, MISSING, dtype=np.uint8)
    states[~np.isnan(deltas)] = SCORED
    states[unaffected] = UNAFFECTED
    states[failed] = FAILED
    derived = window_states(run, [m["id"] for m in memories], [r["index"] for r in responses])
    outside = (states == MISSING) & (derived != COVERED)
    states[outside] = derived[outside]
    deltas[outside & (derived == UNAFFECTED)] = 0.0
    if (states == MISSING).any():
        never = never_scored_unaffected(run, memories, responses) & (states == MISSING)
        states[never] = UNAFFECTED
        deltas[never] = 0.0
    return memories, responses, deltas, states


def never_scored_unaffected(run, memories, responses):
    """Which cells (memories × responses) come before their memory's first
    appearance in the range of one of its calls: exactly 0 whatever became of
    the call, as results.cell_rows stores them when a call fails
    (SnapshotTokens.unaffected_responses, with causal windows on). For the
    cells no call has stored yet (a call pending or in flight, or never to
    be: a cancelled run's): known from the start; the others stay MISSING."""
    known = np.zeros((len(memories), len(responses)), dtype=bool)
    if not settings.MEMSCORE_CAUSAL_WINDOWS or not memories or not responses:
        return known
    row_of = {m["id"]: i for i, m in enumerate(memories)}
    column_of = {r["id"]: j for j, r in enumerate(responses)}
    # Every call, whatever its status: one done whose baseline never was stored no cells either.
    calls = ScoreCall.objects.filter(run=run, filter=ScoreCall.Filter.SKIP_KEY).values_list(
        "memory_id", "memory__key", "range_start", "range_end")
    tokens = None
    for memory_id, key, start, end in calls:
        if memory_id not in row_of:
            continue
        tokens = tokens or snapshot_tokens(run.snapshot)
        before = tokens.responses(start, end)[: tokens.unaffected_responses(start, end, key)]
        columns = [column_of[e.node_id] for e in before if e.node_id in column_of]
        known[row_of[memory_id], columns] = True
    return known


# load_matrix_states' codes; COVERED only in window_states.
SCORED, FAILED, MISSING, UNAFFECTED, NOT_IN_RUN, COVERED = 0, 1, 2, 3, 4, 255


def window_states(run, memory_ids, response_indexes):
    """The state of each cell (a uint8 array, memories × responses) that no
    call of its memory covers, and COVERED for the rest (their rows say).

    A run stores a row for every response in a call's range; an incremental
    run's call covers its memory's own window only. A response before the
    first window comes before the memory: UNAFFECTED (exactly 0, as a full
    run stores it, its call failed or not: leaving the memory out cannot
    change it), known from the start, whatever becomes of the call.
    One after it is NOT_IN_RUN: never scored by this run. A memory with no
    call of its own (an estimate's) is COVERED throughout.
    """
    states = np.full((len(memory_ids), len(response_indexes)), COVERED, dtype=np.uint8)
    if not len(memory_ids) or not len(response_indexes):
        return states
    calls = {}
    # The run's own calls, not filtered by memory: a list of every memory
    # would be a parameter each (past SQLite's limit on a large matrix).
    for memory_id, start, end in ScoreCall.objects.filter(
            run=run, filter=ScoreCall.Filter.SKIP_KEY).values_list("memory_id", "range_start", "range_end"):
        calls.setdefault(memory_id, []).append((start, end))
    index = np.asarray(response_indexes)
    for i, memory_id in enumerate(memory_ids):
        found = calls.get(memory_id)
        if not found:
            continue
        inside = np.zeros(len(index), dtype=bool)
        for start, end in found:
            inside |= (start <= index) & (index < end)
        before = ~inside & (index < min(start for start, _ in found))
        states[i, before] = UNAFFECTED
        states[i, ~inside & ~before] = NOT_IN_RUN
    return states


def cell_arrays(run, memories, responses):
    """(deltas, failed) of the run's cells placed by id into arrays."""
    return _placed(run, memories, responses)[:2]


def _placed(run, memories, responses):
    """The run's cells placed by id into arrays, with no per-cell Python work:
    (deltas, failed, unaffected).

    A million cells are fetched as tuples once and placed with searchsorted:
    a Python loop per cell took seconds at 500 × 2,000.
    """
    deltas = np.full((len(memories), len(responses)), np.nan)
    failed = np.zeros(deltas.shape, dtype=bool)
    unaffected = np.zeros(deltas.shape, dtype=bool)
    if not memories or not responses:
        return deltas, failed, unaffected
    memory_ids = np.array([m["id"] for m in memories], dtype=np.int64)
    response_ids = np.array([r["id"] for r in responses], dtype=np.int64)
    memory_order, response_order = np.argsort(memory_ids), np.argsort(response_ids)
    rows = np.array(_cell_tuples(run.pk), dtype=np.float64).reshape(-1, 5)
    if not len(rows):
        return deltas, failed, unaffected
    cell_memory, cell_response = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64)
    r = _positions(memory_ids, memory_order, cell_memory)
    c = _positions(response_ids, response_order, cell_response)
    # Cells outside the run's rows or columns (e.g. outside an incremental window) are dropped.
    inside = (memory_ids[r] == cell_memory) & (response_ids[c] == cell_response)
    is_failed = rows[:, 3] != 0
    ok = inside & ~is_failed
    deltas[r[ok], c[ok]] = rows[ok, 2]
    failed[r[inside & is_failed], c[inside & is_failed]] = True
    before = inside & (rows[:, 4] != 0)
    unaffected[r[before], c[before]] = True
    return deltas, failed, unaffected


def _positions(ids, order, wanted):
    """Where each of `wanted` is in `ids` (`order` sorts ids); a wanted id not
    in ids gets some position, which the caller checks."""
    return order[np.clip(np.searchsorted(ids, wanted, sorter=order), 0, len(ids) - 1)]


def _cell_tuples(run_id):
    """(memory_id, response_id, delta, failed, unaffected) of every cell of the run.

    A plain cursor: at a million cells it fetches in half the time of
    values_list, which builds each row through the ORM's iterables.
    """
    table = CellScore._meta.db_table
    columns = ", ".join(
        connection.ops.quote_name(CellScore._meta.get_field(name).column)
        for name in ("memory", "response", "delta", "failed")
    )
    run_column = connection.ops.quote_name(CellScore._meta.get_field("run").column)
    state = connection.ops.quote_name(CellScore._meta.get_field("state").column)
    columns += f", CASE WHEN {state} = %s THEN 1 ELSE 0 END"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {connection.ops.quote_name(table)} WHERE {run_column} = %s",
                       [CellScore.State.UNAFFECTED.value, run_id])
        return cursor.fetchall()


def _in_context_order(snapshot_id, memories):
    """The memories sorted by where each first appears in the snapshot."""
    first = {}
    nodes = Node.objects.filter(
        snapshot_id=snapshot_id, memory_id__in=[m["id"] for m in memories],
        section__in=[Section.IDENTITY, Section.CONVERSATION],
    ).order_by().values_list("memory_id", "section", "index")
    for memory_id, section, index in nodes:
        position = (section != Section.IDENTITY, index)
        first[memory_id] = min(position, first.get(memory_id, position))
    return sorted(memories, key=lambda m: first.get(m["id"], (True, float("inf"))))


def response_numbers(snapshot_id, indices):
    """{conversation index: response number} for some responses of a snapshot
    (the numbering load_matrix gives its columns: the k-th assistant response)."""
    wanted = set(indices)
    if not wanted:
        return {}
    all_indices = (
        Node.objects.responses()
        .filter(snapshot_id=snapshot_id, index__lte=max(wanted))
        .order_by("index")
        .values_list("index", flat=True)
    )
    return {index: number for number, index in enumerate(all_indices, start=1) if index in wanted}


def _nested(deltas):
    """Rows of floats with None for NaN: the plain-data form of load_matrix."""
    nested = deltas.tolist()
    for row, col in zip(*np.nonzero(np.isnan(deltas))):
        nested[row][col] = None
    return nested



def memory_texts(snapshot_id, memory_ids):
    """{memory_id: text} of the memories as a snapshot had them (the first
    node of each, as the heatmap's cell page shows it): what a run on that
    snapshot scored, which the memory's current text may no longer be."""
    texts = {}
    nodes = (
        Node.objects.filter(snapshot_id=snapshot_id, memory_id__in=list(memory_ids))
        .in_context_order()
        .values_list("memory_id", "text")
    )
    for memory_id, text in nodes:
        texts.setdefault(memory_id, text)
    return texts
