"""A run's memories × responses matrix, read in bulk for the heatmap and exports.

Built for 500 memories × 2,000 responses: one values_list query for the
cells and plain lists, never a model instance per cell.
"""

from scoring.models import CellScore, Node, ScoreCall
from scoring.models.runs import ZERO_THRESHOLD


def load_matrix(run):
    """The run's matrix as plain data.

    {"memories": [{"id", "key"}] in the run's key order (the order of its
     leave-one-out calls),
     "responses": [{"id", "index", "text"}] the scored responses in
     conversation order ("index" is the conversation index),
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

    responses, col_of = [], {}
    if ranges:
        lo = min(start for start, _ in ranges)
        hi = max(end for _, end in ranges)
        rows = (
            Node.objects.responses()
            .filter(snapshot_id=run.snapshot_id, index__gte=lo, index__lt=hi)
            .order_by("index")
            .values_list("id", "index", "text")
        )
        for node_id, index, text in rows:
            # Incremental runs score separate windows: keep only covered responses.
            if any(start <= index < end for start, end in ranges):
                col_of[node_id] = len(responses)
                responses.append({"id": node_id, "index": index, "text": text})

    deltas = [[None] * len(responses) for _ in memories]
    cells = CellScore.objects.filter(run=run, failed=False).values_list(
        "memory_id", "response_id", "delta"
    )
    for memory_id, response_id, delta in cells.iterator(chunk_size=20_000):
        row, col = row_of.get(memory_id), col_of.get(response_id)
        if row is not None and col is not None:
            deltas[row][col] = delta
    return {"memories": memories, "responses": responses, "deltas": deltas}


def clamp(delta):
    """The displayed importance of a signed delta: ≤ ZERO_THRESHOLD is 0, None stays None."""
    if delta is None:
        return None
    return delta if delta > ZERO_THRESHOLD else 0.0
