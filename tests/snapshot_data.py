"""Snapshot documents for tests: small, valid, and easy to break one field at a time."""

import copy
import json


def snapshot_doc(agent="poc", *, token_ids=False, taken_at="2026-11-20T12:00:00Z", **overrides):
    """A valid snapshot: 2 identity memories, 3 responses, 2 conversation memories.

    With token_ids=True every node carries made-up ids (so no server is needed).
    """
    doc = {
        "agent": agent,
        "taken_at": taken_at,
        "system": [{"role": "system", "text": "You are poc, Sam's assistant."}],
        "identity": [
            {"memory": "identity/core", "text": "I am poc.", "timestamp": "2026-11-01T09:00:00Z"},
            {"memory": "identity/sam", "text": "Sam lives in Leeds.", "timestamp": "2026-11-01T09:00:00Z"},
        ],
        "journal": [{"role": "system", "text": "Journal: a quiet week."}],
        "conversation": [
            {"role": "user", "text": "Where is my desk?", "timestamp": "2026-11-20T11:58:00Z"},
            {"memory": "places/office", "text": "Desk 14 at Platform, code 4471#.",
             "timestamp": "2026-11-20T11:58:01Z"},
            {"role": "assistant", "text": "Desk 14 at Platform; the code is 4471#.",
             "timestamp": "2026-11-20T11:58:09Z"},
            {"role": "user", "text": "And Alice?", "timestamp": "2026-11-20T11:59:00Z"},
            {"memory": "people/alice", "text": "Alice runs the Thursday 10:30 sync.",
             "timestamp": "2026-11-20T11:59:01Z"},
            {"role": "assistant", "text": "Alice's sync is Thursday at 10:30.",
             "timestamp": "2026-11-20T11:59:09Z"},
            {"role": "user", "text": "Thanks!", "timestamp": "2026-11-20T12:00:00Z"},
            {"role": "assistant", "text": "You're welcome.", "timestamp": "2026-11-20T12:00:05Z"},
        ],
    }
    if token_ids:
        n = 10
        for section in ("system", "identity", "journal", "conversation"):
            for node in doc[section]:
                node["token_ids"] = [0, *range(n, n + 5), 1]
                n += 5
    doc.update(overrides)
    return copy.deepcopy(doc)


# Node counts of snapshot_doc(): what an import of it must produce.
NODES = 12
MEMORY_KEYS = 4
RESPONSES = 3


def as_bytes(doc):
    return json.dumps(doc).encode()


def _set(path, value):
    """A mutation that sets doc[a][b]... = value (_DELETE deletes the key)."""
    def mutate(doc):
        target = doc
        for part in path[:-1]:
            target = target[part]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return mutate


_DELETE = object()

# (id, mutation of snapshot_doc(), the message that must be among the errors)
BAD_CASES = [
    ("unknown-top-level", _set(["extras"], 1), "extras: unknown field"),
    ("missing-agent", _set(["agent"], _DELETE), "agent: required"),
    ("agent-not-string", _set(["agent"], 7), "agent: must be a non-empty string"),
    ("agent-mismatch", _set(["agent"], "someone-else"),
     "agent: 'someone-else' does not match the agent 'poc'"),
    ("missing-taken-at", _set(["taken_at"], _DELETE), "taken_at: required"),
    ("taken-at-not-iso", _set(["taken_at"], "yesterday at noon"), "taken_at: not an ISO 8601 date-time"),
    ("taken-at-date-only", _set(["taken_at"], "2026-11-20"), "taken_at: not an ISO 8601 date-time"),
    ("taken-at-number", _set(["taken_at"], 1763640000), "taken_at: not an ISO 8601 date-time"),
    ("missing-section", _set(["journal"], _DELETE), "journal: required (a list of nodes, possibly empty)"),
    ("missing-conversation", _set(["conversation"], _DELETE), "conversation: required (a non-empty list of nodes)"),
    ("section-not-list", _set(["system"], {"role": "system", "text": "x"}), "system: must be a list of nodes"),
    ("empty-conversation", _set(["conversation"], []), "conversation: must not be empty"),
    ("node-not-object", _set(["conversation", 3], "And Alice?"), "conversation[3]: must be an object"),
    ("role-empty", _set(["conversation", 2, "role"], ""), "conversation[2].role: must be a non-empty string"),
    ("role-not-string", _set(["conversation", 2, "role"], 3), "conversation[2].role: must be a non-empty string"),
    ("role-and-memory", _set(["conversation", 3, "memory"], "people/alice"),
     'conversation[3]: a node has either "role" or "memory", not both'),
    ("neither-role-nor-memory", _set(["conversation", 0, "role"], _DELETE),
     'conversation[0]: needs "role" (a message) or "memory"'),
    ("memory-empty", _set(["identity", 0, "memory"], ""), "identity[0].memory: must be a non-empty string"),
    ("memory-in-system", _set(["system", 0], {"memory": "k", "text": "x"}),
     "system[0].memory: memories belong in identity or conversation"),
    ("unknown-node-field", _set(["conversation", 0, "speaker"], "sam"), "conversation[0].speaker: unknown field"),
    ("missing-text", _set(["conversation", 5, "text"], _DELETE), "conversation[5].text: required"),
    ("text-not-string", _set(["conversation", 5, "text"], ["Alice"]), "conversation[5].text: must be a string"),
    ("timestamp-not-iso", _set(["conversation", 1, "timestamp"], "20/11/2026"),
     "conversation[1].timestamp: not an ISO 8601 date-time"),
    ("token-ids-not-list", _set(["system", 0, "token_ids"], "0 12 13"),
     "system[0].token_ids: must be a list of integers"),
    ("token-id-string", _set(["system", 0, "token_ids"], [0, 12, "13", 1]), "system[0].token_ids[2]: not an integer"),
    ("token-id-float", _set(["conversation", 2, "token_ids"], [0, 1.5, 1]),
     "conversation[2].token_ids[1]: not an integer"),
    ("token-id-bool", _set(["journal", 0, "token_ids"], [0, True, 1]), "journal[0].token_ids[1]: not an integer"),
    ("token-id-negative", _set(["identity", 1, "token_ids"], [0, -4, 1]), "identity[1].token_ids[1]: not a token id"),
    ("token-ids-empty", _set(["conversation", 7, "token_ids"], []), "conversation[7].token_ids: must not be empty"),
]
