"""Snapshots in: validation of the format in DESIGN.md, tokenizing, and the import.

The API, the upload form and the `import_snapshot` command all go through
`parse_snapshot_json` (bytes → data), `validate_snapshot` (data → cleaned) and
`import_snapshot` (cleaned → rows), so they accept and reject exactly the same
input with the same messages.
"""

import json
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone as dt_timezone

from django.db import transaction
from django.db.models import Max

from scoring.client import InferenceClient, InferenceError, call_with_retries
from scoring.models import Activity, Memory, Node, Section, Snapshot
from scoring.models.snapshots import SECTION_ORDER

# Past this many problems the rest are summarised: a snapshot with a systematic
# mistake would otherwise produce thousands of lines nobody reads.
MAX_ERRORS = 50
# /tokenize calls in flight at once when a snapshot comes without token ids.
TOKENIZE_CONCURRENCY = 16
# A tokenize failure fails the whole import, and the API caller is waiting.
TOKENIZE_ATTEMPTS = 2

TOP_LEVEL_FIELDS = ("agent", "taken_at", *[s.value for s in SECTION_ORDER])
NODE_FIELDS = ("role", "memory", "text", "timestamp", "token_ids")
# Memories are what scoring removes, and it only looks in these sections.
MEMORY_SECTIONS = (Section.IDENTITY, Section.CONVERSATION)
ROLE_MAX = Node._meta.get_field("role").max_length
KEY_MAX = Memory._meta.get_field("key").max_length
MAX_TOKEN_ID = 2**31 - 1
_DATETIME_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


class SnapshotError(Exception):
    """The snapshot is not valid; `errors` lists every problem, each naming its field."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors[:5]))


class TokenizeError(Exception):
    """The inference server could not tokenize a node: nothing was imported."""


# --- parsing ------------------------------------------------------------------


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


# --- validation ---------------------------------------------------------------


class _Errors:
    def __init__(self):
        self.messages = []
        self.dropped = 0

    def add(self, path, message):
        if len(self.messages) < MAX_ERRORS:
            self.messages.append(f"{path}: {message}")
        else:
            self.dropped += 1

    def raise_if_any(self):
        if self.messages:
            messages = list(self.messages)
            if self.dropped:
                messages.append(f"... and {self.dropped} more errors")
            raise SnapshotError(messages)


def _parse_datetime(value):
    """An aware datetime, or None if value is not an ISO 8601 date-time string."""
    if not isinstance(value, str) or not _DATETIME_SHAPE.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        # Documented: a time without an offset is UTC.
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed


def _is_int(value):
    # bool is an int in Python, but `true` is not a token id.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_duplicates(obj, path, errors):
    for key in getattr(obj, "duplicate_keys", ()):
        errors.add(f"{path}.{key}" if path else key, "appears more than once in the same object")


def _clean_node(node, section, path, errors):
    if not isinstance(node, dict):
        errors.add(path, f"must be an object, not {_json_type(node)}")
        return None
    _check_duplicates(node, path, errors)
    for key in node:
        if key not in NODE_FIELDS:
            errors.add(f"{path}.{key}", f"unknown field (a node has {', '.join(NODE_FIELDS)})")

    role, key = node.get("role"), node.get("memory")
    if "role" in node and "memory" in node:
        errors.add(path, 'a node has either "role" or "memory", not both')
    elif "role" in node:
        if not isinstance(role, str) or not role.strip():
            errors.add(f"{path}.role", "must be a non-empty string")
        elif len(role) > ROLE_MAX or any(c.isspace() for c in role):
            errors.add(f"{path}.role", f"must be one word of at most {ROLE_MAX} characters")
    elif "memory" in node:
        if not isinstance(key, str) or not key.strip():
            errors.add(f"{path}.memory", "must be a non-empty string (the memory's key)")
        elif len(key) > KEY_MAX:
            errors.add(f"{path}.memory", f"longer than {KEY_MAX} characters")
        elif section not in MEMORY_SECTIONS:
            errors.add(f"{path}.memory", "memories belong in identity or conversation")
    else:
        errors.add(path, 'needs "role" (a message) or "memory" (a memory key)')

    text = node.get("text")
    if "text" not in node:
        errors.add(f"{path}.text", "required")
    elif not isinstance(text, str):
        errors.add(f"{path}.text", f"must be a string, not {_json_type(text)}")

    timestamp = None
    if node.get("timestamp") is not None:
        timestamp = _parse_datetime(node["timestamp"])
        if timestamp is None:
            errors.add(f"{path}.timestamp", "not an ISO 8601 date-time")

    token_ids = node.get("token_ids")
    if token_ids is not None:
        if not isinstance(token_ids, list):
            errors.add(f"{path}.token_ids", "must be a list of integers")
            token_ids = None
        elif not token_ids:
            errors.add(f"{path}.token_ids", "must not be empty (leave it out to have it tokenized)")
        else:
            # A fast path for the common, valid case: 200k ids must not crawl.
            if not all(_is_int(t) and 0 <= t <= MAX_TOKEN_ID for t in token_ids):
                for i, t in enumerate(token_ids):
                    if not _is_int(t):
                        errors.add(f"{path}.token_ids[{i}]", "not an integer")
                    elif not 0 <= t <= MAX_TOKEN_ID:
                        errors.add(f"{path}.token_ids[{i}]", "not a token id (out of range)")

    return {
        "role": role if isinstance(role, str) and "memory" not in node else "",
        "memory_key": key if isinstance(key, str) and "role" not in node else "",
        "text": text if isinstance(text, str) else "",
        "timestamp": timestamp,
        "token_ids": token_ids,
    }


def _json_type(value):
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list"}.get(type(value), "an object")


def validate_snapshot(data, *, agent=None):
    """Check data against the snapshot format; return it cleaned or raise SnapshotError.

    With `agent`, the snapshot's "agent" must be that agent's name. Cleaned:
    {"agent": str, "taken_at": datetime, "sections": {Section: [node, ...]}}
    where a node is {"role", "memory_key", "text", "timestamp", "token_ids"}.
    """
    errors = _Errors()
    if not isinstance(data, dict):
        raise SnapshotError([f"snapshot: must be a JSON object, not {_json_type(data)}"])
    _check_duplicates(data, "", errors)
    for key in data:
        if key not in TOP_LEVEL_FIELDS:
            errors.add(key, f"unknown field (a snapshot has {', '.join(TOP_LEVEL_FIELDS)})")

    name = data.get("agent")
    if "agent" not in data:
        errors.add("agent", "required (the agent's name)")
    elif not isinstance(name, str) or not name.strip():
        errors.add("agent", "must be a non-empty string")
    elif agent is not None and name != agent.name:
        errors.add("agent", f"{name!r} does not match the agent {agent.name!r} it is imported into")

    taken_at = None
    if "taken_at" not in data:
        errors.add("taken_at", "required (when the snapshot was taken)")
    else:
        taken_at = _parse_datetime(data["taken_at"])
        if taken_at is None:
            errors.add("taken_at", "not an ISO 8601 date-time")

    sections = {}
    for section in SECTION_ORDER:
        nodes = data.get(section.value)
        if section.value not in data:
            errors.add(section.value, "required (a list of nodes, possibly empty)")
            continue
        if not isinstance(nodes, list):
            errors.add(section.value, f"must be a list of nodes, not {_json_type(nodes)}")
            continue
        sections[section] = [
            _clean_node(node, section, f"{section.value}[{i}]", errors)
            for i, node in enumerate(nodes)
        ]
    if data.get(Section.CONVERSATION.value) == []:
        errors.add("conversation", "must not be empty")

    errors.raise_if_any()
    return {"agent": name, "taken_at": taken_at, "sections": sections}


# --- import -------------------------------------------------------------------


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


def import_snapshot(agent, data, *, by=None, source=Snapshot.Source.UPLOAD, actor_name=None):
    """Validate, tokenize what needs it, and store one snapshot of `agent`.

    Raises SnapshotError (invalid input) or TokenizeError (server failed);
    in both cases nothing is written.
    """
    cleaned = validate_snapshot(data, agent=agent)
    nodes = _unsaved_nodes(cleaned)
    tokenize_missing(agent, nodes)

    with transaction.atomic():
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
