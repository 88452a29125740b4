"""What planning needs of a snapshot: its entries and memory keys, no token ids.

Reading only the outline keeps starting a run from a page quick: the token
ids (SnapshotTokens) are loaded by the workers that score.
"""

from scoring.models import Node, Section
from scoring.models.snapshots import SECTION_ORDER

from .tokens import Entry


class Outline:
    """A snapshot's conversation entries and the memory keys of its context."""

    def __init__(self, snapshot):
        rows = Node.objects.filter(
            snapshot=snapshot, section__in=[Section.IDENTITY, Section.CONVERSATION]
        ).values_list("section", "index", "id", "role", "memory_key", "n_tokens")
        identity, conversation = [], []
        for section, index, node_id, role, key, n_tokens in sorted(rows, key=lambda r: r[1]):
            entry = Entry(index=index, node_id=node_id, role=role, memory_key=key, n_tokens=n_tokens)
            (identity if section == Section.IDENTITY else conversation).append(entry)
        self.identity_keys = [e.memory_key for e in identity if e.memory_key]
        self.entries = conversation

    def keys(self):
        """Memory keys of identity then conversation, each once, in order of first appearance."""
        return list(dict.fromkeys(self.identity_keys + [e.memory_key for e in self.entries if e.memory_key]))

    def first_position(self, key, *, identity_first=True):
        """Conversation index where the key first appears; identity memories count as 0.

        identity_first=False prefers the conversation's first appearance and
        counts only an identity-only memory as 0 (one-memory mode).
        """
        in_identity = key in self.identity_keys
        if in_identity and identity_first:
            return 0
        for e in self.entries:
            if e.memory_key == key:
                return e.index
        return 0 if in_identity else None

    def window_end(self, start, n):
        """End (exclusive) of the range from start through the nth response after it."""
        seen = 0
        for e in self.entries[start:]:
            if e.is_response:
                seen += 1
                if seen >= n:
                    return e.index + 1
        return len(self.entries)

    def responses_in(self, start, end):
        return sum(1 for e in self.entries[start:end] if e.is_response)

    def tokens_through(self):
        """Per entry, the conversation's tokens up to and including it; and the total."""
        cumulative, running = [], 0
        for e in self.entries:
            running += e.n_tokens
            cumulative.append(running)
        return cumulative, running


def memory_keys(snapshot):
    """The snapshot's memory keys, each once, in context order (identity first)."""
    rows = Node.objects.filter(snapshot=snapshot).memories().values_list("section", "index", "memory_key")
    # Ordered in Python: section names do not sort in context order.
    rank = {section: i for i, section in enumerate(SECTION_ORDER)}
    keys = {}
    for _, _, key in sorted(rows, key=lambda r: (rank[r[0]], r[1])):
        keys.setdefault(key, None)
    return list(keys)
