"""Bytes or text → data, keeping what plain JSON parsing loses: keys given twice."""

import json


class SnapshotError(Exception):
    """The snapshot is not valid; `errors` lists every problem, each naming its field."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors[:5]))


class _Object(dict):
    """A JSON object that remembers the keys it saw twice (json keeps only the last)."""

    duplicate_keys = ()


def _object_pairs(pairs):
    obj = _Object()
    seen_twice = []
    for key, value in pairs:
        if key in obj and key not in seen_twice:
            seen_twice.append(key)
        obj[key] = value
    if seen_twice:
        obj.duplicate_keys = tuple(seen_twice)
    return obj


def parse_snapshot_json(raw):
    """Bytes or text → data; a SnapshotError for anything that is not JSON."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise SnapshotError([f"snapshot: not UTF-8 text ({e.reason} at byte {e.start})"]) from None
    try:
        return json.loads(raw, object_pairs_hook=_object_pairs)
    except json.JSONDecodeError as e:
        raise SnapshotError(
            [f"snapshot: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"]
        ) from None
