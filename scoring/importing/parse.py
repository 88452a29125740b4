"""Bytes or text → data, keeping what plain JSON parsing loses: keys given twice.

Whatever the bytes, the answer is data or a SnapshotError, never another
exception: JSON nested past Python's recursion limit and integers longer than
its int-conversion limit are errors of the snapshot, not of the server.
"""

import json
import sys


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
    except RecursionError:
        # A snapshot nests 4 levels (object, section, node, token_ids); the C
        # parser gives up near the interpreter's recursion limit (~1,000).
        raise SnapshotError(["snapshot: nested too deeply to read (hundreds of levels; a snapshot nests 4)"]) from None
    except ValueError:
        # int() refuses more digits than sys.get_int_max_str_digits().
        raise SnapshotError(
            [f"snapshot: a number longer than {sys.get_int_max_str_digits()} digits"]
        ) from None
