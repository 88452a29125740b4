"""Cleaned snapshot → rows: tokenize what came without token ids, upsert the
agent's memories, and write the snapshot, its nodes and the log entry at once."""

from concurrent.futures import ThreadPoolExecutor, as_completed

from django.db import transaction
from django.db.models import Max

from scoring.client import InferenceClient, InferenceError, call_with_retries
from scoring.importing.identical import find_identical
from scoring.importing.served import DETOKENIZE_SOURCE, VOCAB_SOURCE, refused_from, served_vocab_size
from scoring.importing.validate import check_vocabulary, validate_snapshot
from scoring.models import Activity, Agent, Memory, Node, Snapshot
from scoring.models.snapshots import SECTION_ORDER

# /tokenize calls in flight at once when a snapshot comes without token ids.
TOKENIZE_CONCURRENCY = 16
# A tokenize failure fails the whole import, and the API caller is waiting.
TOKENIZE_ATTEMPTS = 2


class TokenizeError(Exception):
    """The inference server could not tokenize a node: nothing was imported."""


def _unsaved_nodes(cleaned):
    nodes = []
    for section in SECTION_ORDER:
        for index, item in enumerate(cleaned["sections"][section]):
            node = Node(
                section=section,
                index=index,
                role=item["role"],
                memory_key=item["memory_key"],
                text=item["text"],
                timestamp=item["timestamp"],
            )
            if item["token_ids"] is not None:
                node.token_ids = item["token_ids"]
            nodes.append(node)
    return nodes


def tokenize_missing(agent, nodes):
    """Fill `token_ids` of nodes that have none from the agent's server's /tokenize.

    Each distinct rendered text is tokenized once, TOKENIZE_CONCURRENCY at a
    time; the first failure stops the rest and raises TokenizeError.
    """
    todo = {}
    for node in nodes:
        if node.token_ids is None or node.token_ids == []:
            todo.setdefault(agent.render_node(node), []).append(node)
    if not todo:
        return
    with InferenceClient.for_agent(agent) as client:
        def tokenize(text):
            return call_with_retries(lambda: client.tokenize(text), attempts=TOKENIZE_ATTEMPTS)

        with ThreadPoolExecutor(max_workers=min(TOKENIZE_CONCURRENCY, len(todo))) as pool:
            futures = {pool.submit(tokenize, text): text for text in todo}
            try:
                for future in as_completed(futures):
                    ids = future.result()
                    for node in todo[futures[future]]:
                        node.token_ids = ids
            except InferenceError as e:
                pool.shutdown(wait=False, cancel_futures=True)
                first = todo[futures[future]][0]
                raise TokenizeError(
                    f"the inference server at {agent.base_url} could not tokenize "
                    f"{first.section}[{first.index}]: {e}"
                ) from None


def _memories_for(agent, nodes, taken_at):
    """Upsert the agent's Memory rows for the keys in nodes; return {key: Memory}.

    The text kept is the one of the newest snapshot: an older snapshot imported
    late creates missing keys but does not overwrite newer texts.
    """
    latest_text = {}
    for node in nodes:
        if node.memory_key:
            latest_text[node.memory_key] = node.text  # the last occurrence wins
    if not latest_text:
        return {}
    # ignore_conflicts: a concurrent import of the same agent may create a key first.
    Memory.objects.bulk_create(
        [Memory(agent=agent, key=key, text=text) for key, text in latest_text.items()],
        ignore_conflicts=True,
        batch_size=500,
    )
    memories = {m.key: m for m in Memory.objects.filter(agent=agent, key__in=list(latest_text))}
    newest = agent.snapshots.aggregate(newest=Max("taken_at"))["newest"]
    if newest is None or taken_at >= newest:
        changed = []
        for key, memory in memories.items():
            if memory.text != latest_text[key]:
                memory.text = latest_text[key]
                changed.append(memory)
        Memory.objects.bulk_update(changed, ["text"], batch_size=500)
    return memories


def restore_memory_texts(agent):
    """Each of the agent's memories takes again the text of the newest
    snapshot that holds its key (the last occurrence in it), as the imports
    would have left it: after a snapshot's deletion, a memory showed the text
    of a snapshot no longer there. A key in no snapshot keeps its text."""
    texts = {}
    nodes = Node.objects.filter(snapshot__agent=agent).exclude(memory_key="").in_context_order(
        "snapshot__taken_at", "snapshot_id")
    for key, text in nodes.values_list("memory_key", "text").iterator(chunk_size=2000):
        texts[key] = text  # a newer snapshot's, a later node's, wins
    changed = [m for m in Memory.objects.filter(agent=agent, key__in=list(texts)) if m.text != texts[m.key]]
    for memory in changed:
        memory.text = texts[memory.key]
    Memory.objects.bulk_update(changed, ["text"], batch_size=500)
    return len(changed)


def import_snapshot(agent, data, *, by=None, source=Snapshot.Source.UPLOAD, actor_name=None):
    """Validate, tokenize what needs it, and store one new snapshot of `agent`.

    Raises SnapshotError (invalid input) or TokenizeError (server failed);
    in both cases nothing is written.
    """
    return _import(agent, data, find_existing=False, by=by, source=source, actor_name=actor_name)[0]


def import_or_find(agent, data, *, by=None, source=Snapshot.Source.UPLOAD, actor_name=None):
    """Like import_snapshot, but content the agent already sent gives the stored
    snapshot: (snapshot, created). What the API, the upload and the CLI call, so
    a push retried after a lost answer is stored once (identical.py says "same")."""
    return _import(agent, data, find_existing=True, by=by, source=source, actor_name=actor_name)


def _check_served_vocabulary(agent, cleaned):
    """Given token ids must be in the served model's vocabulary, where the server says its size."""
    given = any(
        node["token_ids"] for nodes in cleaned["sections"].values() for node in nodes
    )
    if not given:
        return
    vocab_size = served_vocab_size(agent)
    if vocab_size is not None:
        check_vocabulary(cleaned, vocab_size, VOCAB_SOURCE)
        return
    ids = [t for nodes in cleaned["sections"].values() for node in nodes for t in node["token_ids"] or ()]
    refused = refused_from(agent, ids)
    if refused is not None:
        check_vocabulary(cleaned, refused, DETOKENIZE_SOURCE,
                         limit=f"outside the model's vocabulary ({DETOKENIZE_SOURCE} refuses ids from {refused} on)")


def _import(agent, data, *, find_existing, by, source, actor_name):
    cleaned = validate_snapshot(data, agent=agent)
    _check_served_vocabulary(agent, cleaned)
    nodes = _unsaved_nodes(cleaned)
    # Looked for before tokenizing: a retried push costs the server nothing.
    if find_existing and (existing := find_identical(agent, cleaned, nodes)):
        return existing, False
    tokenize_missing(agent, nodes)

    with transaction.atomic():
        if find_existing:
            # Two pushes of one snapshot at once: the agent's row lock makes the
            # second wait for the first to commit, then find it.
            list(Agent.objects.select_for_update().filter(pk=agent.pk).values_list("pk"))
            if existing := find_identical(agent, cleaned, nodes):
                return existing, False
        return _store(agent, cleaned, nodes, by=by, source=source, actor_name=actor_name), True


def _store(agent, cleaned, nodes, *, by, source, actor_name):
    """Write the snapshot, its nodes, new memories and the log entry (in the caller's transaction)."""
    # Computed before this snapshot exists, so "newest" means the others.
    memories = _memories_for(agent, nodes, cleaned["taken_at"])
    snapshot = Snapshot.objects.create(
        agent=agent,
        taken_at=cleaned["taken_at"],
        imported_by=by if by is not None and by.is_authenticated else None,
        source=source,
        node_count=len(nodes),
        memory_count=len(memories),
        response_count=sum(1 for n in nodes if n.is_response),
        token_count=sum(len(n.token_ids) for n in nodes),
    )
    for node in nodes:
        node.snapshot = snapshot
        node.n_tokens = len(node.token_ids)
        node.memory = memories.get(node.memory_key) if node.memory_key else None
    Node.objects.bulk_create(nodes, batch_size=1000)
    Activity.record(
        by,
        "imported snapshot",
        snapshot,
        actor_name=actor_name,
        source=source,
        nodes=snapshot.node_count,
        memories=snapshot.memory_count,
        responses=snapshot.response_count,
        tokens=snapshot.token_count,
    )
    return snapshot
