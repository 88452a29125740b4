"""Two full runs of one agent side by side: each memory's importance in both
and the change, e.g. before and after training, or on two snapshots.

Importances are maths.importance_sum and maths.importance_max over each
memory's cells, read with the heatmap's matrix and cached per finished run
(its cells can no longer change).
"""

from scoring import maths
from scoring.heatmap.matrix import FAILED, SCORED, load_matrix_states
from scoring.heatmap.payload import cache_key, through_cache
from scoring.models import Node

SORTS = {
    "abs": "largest change first",
    "rise": "largest rise first",
    "drop": "largest drop first",
    "key": "memory key",
}


def run_importances(run):
    """{memory_id: {"key", "sum", "max", "scored", "failed"}} over the run's
    cells; "sum" and "max" are None when no cell of the memory was scored."""
    if run.is_active:
        return _importances(run)
    return through_cache("importances-" + cache_key(run), lambda: _importances(run))


def _importances(run):
    memories, _, deltas, states = load_matrix_states(run)
    found = {}
    measured, failed = (states == SCORED).sum(axis=1).tolist(), (states == FAILED).sum(axis=1).tolist()
    for memory, row, failed_row, measured_row in zip(memories, deltas.tolist(), failed, measured):
        scored = sum(1 for d in row if d == d)  # NaN (failed, not scored) is not equal to itself
        if maths.importance_unknown(failed_row, measured_row):
            scored = 0  # never compared as 0
        found[memory["id"]] = {
            "key": memory["key"],
            "sum": maths.importance_sum(row) if scored else None,
            "max": maths.importance_max(row),
            "scored": scored,
            "failed": int(failed_row),
        }
    return found


def compare(before, after, sort="abs"):
    """One row per memory in either run: {"memory_id", "key", "before",
    "after" (run_importances' entries, or None when the memory is not in that
    run or has no scored cell there), "change_sum", "change_max" (after minus
    before, None unless both have a value)}, sorted by `sort` (SORTS) on the
    change of the sum; rows without a change go last, by key."""
    a, b = run_importances(before), run_importances(after)
    # A memory whose text differs between the two snapshots: its change may be the text's, not the model's.
    texts = ({}, {}) if before.snapshot_id == after.snapshot_id else (
        memory_texts(before.snapshot_id), memory_texts(after.snapshot_id))
    rows = []
    for memory_id in a.keys() | b.keys():
        old, new = _scored(a.get(memory_id)), _scored(b.get(memory_id))
        rows.append({
            "memory_id": memory_id,
            "key": (a.get(memory_id) or b.get(memory_id))["key"],
            "before": old, "after": new,
            "change_sum": new["sum"] - old["sum"] if old and new else None,
            "change_max": new["max"] - old["max"] if old and new else None,
        })
        key = rows[-1]["key"]
        rows[-1]["text_changed"] = key in texts[0] and key in texts[1] and texts[0][key] != texts[1][key]
    return _sorted(rows, sort)


def memory_texts(snapshot_id):
    """{key: text} of a snapshot's memories, each key's last occurrence (as the import keeps it)."""
    nodes = Node.objects.filter(snapshot_id=snapshot_id).exclude(memory_key="").in_context_order()
    return dict(nodes.values_list("memory_key", "text"))


def _scored(entry):
    return entry if entry and entry["scored"] else None


def _sorted(rows, sort):
    rows.sort(key=lambda row: row["key"])
    if sort == "key":
        return rows
    by = {"abs": lambda r: -abs(r["change_sum"]), "rise": lambda r: -r["change_sum"],
          "drop": lambda r: r["change_sum"]}[sort if sort in SORTS else "abs"]
    changed = [r for r in rows if r["change_sum"] is not None]
    # sort() is stable: equal changes stay in key order.
    return sorted(changed, key=by) + [r for r in rows if r["change_sum"] is None]
