"""Finding a stored snapshot with the same content, so that a push sent twice
(an agent retrying after a lost answer) is stored once."""

from scoring.models import Node


def _node_key(section, index, role, memory_key, text, timestamp):
    return (section, index, role, memory_key, text, timestamp)


def find_identical(agent, cleaned, nodes):
    """The agent's stored snapshot with this content, or None.

    Same content: the same taken_at and the same nodes in the same places
    (role or key, text, timestamp); where the new snapshot gives token ids they
    must be the stored ones, and a node sent without ids matches whatever ids
    its server gave the stored one.
    """
    candidates = agent.snapshots.filter(taken_at=cleaned["taken_at"], node_count=len(nodes))
    wanted = {
        _node_key(n.section, n.index, n.role, n.memory_key, n.text, n.timestamp): n.token_ids
        for n in nodes
    }
    for snapshot in candidates.order_by("pk"):
        stored = Node.objects.filter(snapshot=snapshot).values_list(
            "section", "index", "role", "memory_key", "text", "timestamp", "token_ids"
        )
        if all(_same(wanted, row) for row in stored):
            return snapshot
    return None


def _same(wanted, row):
    key, token_ids = _node_key(*row[:6]), row[6]
    if key not in wanted:
        return False
    given = wanted[key]
    return not given or given == token_ids  # [] and None: sent without ids
