"""Token sequences of a snapshot: tokens(range, filter) as in the reference.

A sequence is the system nodes, then identity, then journal, then the
conversation entries in [start, end), with memory nodes left out by the
filter. Every node's ids are stored with it, so a sequence is a selection of
stored ids: the snapshot's nodes are loaded once, a filter is a numpy mask
over the nodes, and the kept nodes' id lists are joined (a few milliseconds
for 200k tokens in 2,000 nodes; numpy's tolist() of the tokens would be ten
times slower, and the server wants a JSON list).
"""

import functools
from dataclasses import dataclass

import numpy as np

from scoring.models import Node, ScoreCall, Section
from scoring.models.snapshots import SECTION_ORDER

Filter = ScoreCall.Filter

# Snapshots never change after import, so a worker keeps the last few it used.
_CACHE_SIZE = 4


@dataclass(frozen=True)
class Entry:
    """One conversation entry, what planning and results need of it."""

    index: int
    node_id: int
    role: str
    memory_key: str
    n_tokens: int

    @property
    def is_response(self):
        return self.role == "assistant"


class SnapshotTokens:
    """All of one snapshot's token ids, ready to be cut into sequences."""

    def __init__(self, snapshot_id):
        self.snapshot_id = snapshot_id
        order = {section: i for i, section in enumerate(SECTION_ORDER)}
        rows = sorted(
            Node.objects.filter(snapshot_id=snapshot_id).values_list(
                "section", "index", "id", "role", "memory_key", "token_ids"
            ),
            key=lambda r: (order[r[0]], r[1]),
        )
        keys = {}
        self.node_ids_list = [r[5] for r in rows]
        self.n_tokens = sum(len(ids) for ids in self.node_ids_list)
        # Per node: its conversation index (-1 outside the conversation), its
        # memory key as a small int (-1 for messages), and whether filters apply.
        self.conv_index = np.array(
            [r[1] if r[0] == Section.CONVERSATION else -1 for r in rows], dtype=np.int64
        )
        self.key_code = np.array(
            [keys.setdefault(r[4], len(keys)) if r[4] else -1 for r in rows], dtype=np.int64
        )
        self.filterable = np.array(
            [r[0] in (Section.IDENTITY, Section.CONVERSATION) for r in rows], dtype=bool
        )
        self.key_codes = keys
        self.entries = [
            Entry(index=r[1], node_id=r[2], role=r[3], memory_key=r[4], n_tokens=len(r[5]))
            for r in rows
            if r[0] == Section.CONVERSATION
        ]
        self.identity_keys = [r[4] for r in rows if r[0] == Section.IDENTITY and r[4]]
        self._responses = {}
        # Entries are addressed by list position: the import numbers them 0..n-1.
        if any(e.index != i for i, e in enumerate(self.entries)):
            raise ValueError(f"snapshot {snapshot_id}: conversation indices are not 0..n-1")

    def tokens(self, start, end, filter=Filter.NONE, key=None):
        """The ids of the context with conversation entries [start, end), filtered."""
        mask = (self.conv_index < 0) | ((self.conv_index >= start) & (self.conv_index < end))
        if filter == Filter.SKIP_KEY:
            code = self.key_codes.get(key, -2)
            mask &= ~(self.filterable & (self.key_code == code))
        elif filter == Filter.SKIP_ALL:
            mask &= ~(self.filterable & (self.key_code >= 0))
        elif filter != Filter.NONE:
            raise ValueError(f"unknown filter {filter!r}")
        ids = []
        for i in np.flatnonzero(mask).tolist():
            ids.extend(self.node_ids_list[i])
        return ids

    def responses(self, start, end):
        """The conversation's assistant entries in [start, end), in order."""
        # Every call of a full matrix asks for the same range: keep it (a
        # fresh list each time, so callers may change theirs).
        found = self._responses.get((start, end))
        if found is None:
            found = self._responses[start, end] = [e for e in self.entries[start:end] if e.is_response]
        return list(found)

    def node_ids(self, conv_index):
        """The token ids of one conversation entry."""
        return list(self.node_ids_list[len(self.conv_index) - len(self.entries) + conv_index])


def snapshot_tokens(snapshot):
    """The SnapshotTokens of a snapshot, loaded once per worker process."""
    # imported_at too: a test database may hand the same id to a new snapshot.
    return _load(snapshot.pk, snapshot.imported_at)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _load(snapshot_id, imported_at):
    # Two threads missing at once may both load it: harmless, and rarer than
    # holding a lock over a load of the whole snapshot would be costly.
    return SnapshotTokens(snapshot_id)
