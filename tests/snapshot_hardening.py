"""Snapshots that once got a 500 (issue 13): each as raw bytes, with the one message
the API, the upload form and the command line must all answer."""

import json

from tests.snapshot_data import snapshot_doc

NUL = "contains a NUL character (\\u0000), which cannot be stored"
SURROGATE = "contains a lone surrogate (\\ud800 to \\udfff), which is not Unicode text"
OUT_OF_RANGE = "out of range (from 0001-01-02T00:00:00Z to 9999-12-30T23:59:59.999999Z)"


def _doc_bytes(mutate):
    def build():
        doc = snapshot_doc(token_ids=True)
        mutate(doc)
        # ensure_ascii (the default) writes "\u0000" and "\ud800" as JSON escapes.
        return json.dumps(doc).encode()
    return build


def _nested(depth):
    def build():
        doc = snapshot_doc(token_ids=True)
        body = json.dumps(doc)
        deep = "[" * depth + "]" * depth
        return body.replace('"conversation": [', f'"conversation": [{deep}, ', 1).encode()
    return build


def _huge_int():
    def build():
        body = json.dumps(snapshot_doc(token_ids=True))
        return body.replace('"token_ids": [0,', '"token_ids": [' + "9" * 5000 + ",", 1).encode()
    return build


def _set_node(section, index, key, value):
    def mutate(doc):
        doc[section][index][key] = value
    return mutate


def _set_top(key, value):
    def mutate(doc):
        doc[key] = value
    return mutate


# (id, () -> body bytes, a message that must be among the errors)
HARD_CASES = [
    ("nul-in-text", _doc_bytes(_set_node("conversation", 0, "text", "a\x00b")),
     f"conversation[0].text: {NUL}"),
    ("nul-in-role", _doc_bytes(_set_node("conversation", 0, "role", "us\x00er")),
     f"conversation[0].role: {NUL}"),
    ("nul-in-key", _doc_bytes(_set_node("identity", 0, "memory", "identity/\x00core")),
     f"identity[0].memory: {NUL}"),
    ("surrogate-in-text", _doc_bytes(_set_node("conversation", 2, "text", "x\ud800y")),
     f"conversation[2].text: {SURROGATE}"),
    ("surrogate-in-role", _doc_bytes(_set_node("conversation", 0, "role", "\udfff")),
     f"conversation[0].role: {SURROGATE}"),
    ("surrogate-in-key", _doc_bytes(_set_node("identity", 1, "memory", "k\udc00")),
     f"identity[1].memory: {SURROGATE}"),
    ("surrogate-in-field-name", _doc_bytes(_set_node("conversation", 0, "\ud800", 1)),
     "conversation[0].\\ud800: unknown field"),
    ("nul-in-field-name", _doc_bytes(_set_top("x\x00", 1)), "x\\x00: unknown field"),
    ("nested-3000-deep", _nested(3000), "snapshot: nested too deeply to read"),
    ("number-of-5000-digits", _huge_int(), "snapshot: a number longer than"),
    ("taken-at-year-10000", _doc_bytes(_set_top("taken_at", "9999-12-31T23:59:59-14:00")),
     f"taken_at: {OUT_OF_RANGE}"),
    ("taken-at-year-0", _doc_bytes(_set_top("taken_at", "0001-01-01T00:00:00+14:00")),
     f"taken_at: {OUT_OF_RANGE}"),
    ("timestamp-year-10000",
     _doc_bytes(_set_node("conversation", 1, "timestamp", "9999-12-31T23:59:59-14:00")),
     f"conversation[1].timestamp: {OUT_OF_RANGE}"),
    ("timestamp-year-0",
     _doc_bytes(_set_node("identity", 0, "timestamp", "0001-01-01T00:00:00+14:00")),
     f"identity[0].timestamp: {OUT_OF_RANGE}"),
    ("role-robot", _doc_bytes(_set_node("conversation", 0, "role", "robot")),
     "conversation[0].role: 'robot' is not a chat role"),
]

# Times at the edges: (value, accepted). Accepted values are a day inside what
# Python's datetime holds, so any time zone can still show them.
BOUNDARY_TIMES = [
    ("0001-01-02T00:00:00Z", True),
    ("0001-01-02T14:00:00+14:00", True),
    ("0001-01-01T10:00:00-14:00", True),
    ("9999-12-30T23:59:59.999999Z", True),
    ("9999-12-30T09:59:59.999999-14:00", True),
    ("9999-12-31T13:59:59.999999+14:00", True),
    ("0001-01-01T23:59:59.999999Z", False),
    ("0001-01-02T13:59:59.999999+14:00", False),
    ("0001-01-01T00:00:00+14:00", False),
    ("0001-01-01T00:00:00Z", False),
    ("9999-12-31T00:00:00Z", False),
    ("9999-12-30T10:00:00-14:00", False),
    ("9999-12-31T23:59:59-14:00", False),
    ("9999-12-31T23:59:59.999999Z", False),
]
