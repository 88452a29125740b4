"""Data → cleaned snapshot: every problem found, each naming its field.

Beyond the format, it refuses what could be stored but never used: text the
database cannot hold (NUL, lone surrogates), times outside what Python's
datetime can show in any time zone, roles no chat template knows, and (given
the served vocabulary's size) token ids the model does not have.
"""

import re
from datetime import UTC, datetime, timedelta

from django.conf import settings

from scoring.importing.parse import SnapshotError
from scoring.models import Memory, Node, Section
from scoring.models.snapshots import SECTION_ORDER

# Past this many problems the rest are summarised: a snapshot with a systematic
# mistake would otherwise produce thousands of lines nobody reads.
MAX_ERRORS = 50
TOP_LEVEL_FIELDS = ("agent", "taken_at", *[s.value for s in SECTION_ORDER])
NODE_FIELDS = ("role", "memory", "text", "timestamp", "token_ids")
# Memories are what scoring removes, and it only looks in these sections.
MEMORY_SECTIONS = (Section.IDENTITY, Section.CONVERSATION)
ROLE_MAX = Node._meta.get_field("role").max_length
KEY_MAX = Memory._meta.get_field("key").max_length
MAX_TOKEN_ID = 2**31 - 1
# The roles chat templates render: ChatML/OpenAI (system, developer, user,
# assistant, tool, function) and Llama 3's ipython. Any other role could be
# stored but no model was trained on it, so its scores would mean nothing.
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function", "ipython")
_DATETIME_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# A day inside datetime.min/max: stored in UTC, a time must still be showable
# in any time zone (offsets are under a day), or every page showing it fails.
EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
OUT_OF_RANGE = "out of range (from {} to {})".format(
    *(t.isoformat().replace("+00:00", "Z") for t in (EARLIEST, LATEST))
)
# A snapshot's taken_at may run this far ahead of the server's clock (an
# agent's clock skew); later, it is refused: the latest snapshot is the one
# taken last, and one dated 2099 would stay the agent's latest until then.
FUTURE_TOLERANCE = timedelta(days=1)
# PostgreSQL refuses NUL in text; UTF-8 (both databases, every page) cannot
# encode a lone surrogate, which JSON's "\ud800" escape can still produce.
_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")


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


def _unstorable(text):
    """Why text cannot be stored, or None."""
    found = _NUL_OR_SURROGATE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored"
    return "contains a lone surrogate (\\ud800 to \\udfff), which is not Unicode text"


def _shown(key):
    """A field name as it can be printed: NUL, surrogates and controls escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in key)


def _clean_time(value, path, errors):
    """An aware datetime within EARLIEST..LATEST, or None with the problem added."""
    parsed = _parse_datetime(value)
    if parsed is None:
        errors.add(path, "not an ISO 8601 date-time")
        return None
    try:
        in_utc = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is in the year 10000
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc <= LATEST:
        errors.add(path, OUT_OF_RANGE)
        return None
    return parsed


def _in_the_future(moment):
    """Why a snapshot's time is too far ahead of the server's clock, or None."""
    now = datetime.now(UTC)
    if moment.astimezone(UTC) <= now + FUTURE_TOLERANCE:
        return None
    days = FUTURE_TOLERANCE.days
    return (f"in the future: {moment.isoformat()} is more than {days} day{'s' * (days != 1)} after "
            f"the server's clock ({now.replace(microsecond=0).isoformat().replace('+00:00', 'Z')}); "
            f"check the agent's clock and time zone")


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
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _is_int(value):
    # bool is an int in Python, but `true` is not a token id.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_duplicates(obj, path, errors):
    for key in getattr(obj, "duplicate_keys", ()):
        shown = _shown(key)
        errors.add(f"{path}.{shown}" if path else shown, "appears more than once in the same object")


def _clean_node(node, section, path, errors):
    """One node → {"role", "memory_key", "text", "timestamp", "token_ids"},
    adding its problems to `errors` (None if it is not even an object)."""
    if not isinstance(node, dict):
        errors.add(path, f"must be an object, not {_json_type(node)}")
        return None
    _check_duplicates(node, path, errors)
    for key in node:
        if key not in NODE_FIELDS:
            errors.add(f"{path}.{_shown(key)}", f"unknown field (a node has {', '.join(NODE_FIELDS)})")
    role, key = node.get("role"), node.get("memory")
    _check_role_or_memory(node, section, path, errors)

    text = node.get("text")
    if "text" not in node:
        errors.add(f"{path}.text", "required")
    elif not isinstance(text, str):
        errors.add(f"{path}.text", f"must be a string, not {_json_type(text)}")
    elif problem := _unstorable(text):
        errors.add(f"{path}.text", problem)

    timestamp = None
    if node.get("timestamp") is not None:
        timestamp = _clean_time(node["timestamp"], f"{path}.timestamp", errors)

    return {
        "role": role if isinstance(role, str) and "memory" not in node else "",
        "memory_key": key if isinstance(key, str) and "role" not in node else "",
        "text": text if isinstance(text, str) else "",
        "timestamp": timestamp,
        "token_ids": _clean_token_ids(node.get("token_ids"), f"{path}.token_ids", errors),
    }


def _check_role_or_memory(node, section, path, errors):
    """A node is a message (a "role") or a memory (its key), never both."""
    role, key = node.get("role"), node.get("memory")
    if "role" in node and "memory" in node:
        errors.add(path, 'a node has either "role" or "memory", not both')
    elif "role" in node:
        if not isinstance(role, str) or not role.strip():
            errors.add(f"{path}.role", "must be a non-empty string")
        elif problem := _unstorable(role):
            errors.add(f"{path}.role", problem)
        elif len(role) > ROLE_MAX or any(c.isspace() for c in role):
            errors.add(f"{path}.role", f"must be one word of at most {ROLE_MAX} characters")
        elif role not in CHAT_ROLES:
            errors.add(f"{path}.role", f"{role!r} is not a chat role ({', '.join(CHAT_ROLES)})")
    elif "memory" in node:
        if not isinstance(key, str) or not key.strip():
            errors.add(f"{path}.memory", "must be a non-empty string (the memory's key)")
        elif problem := _unstorable(key):
            errors.add(f"{path}.memory", problem)
        elif len(key) > KEY_MAX:
            errors.add(f"{path}.memory", f"longer than {KEY_MAX} characters")
        elif section not in MEMORY_SECTIONS:
            errors.add(f"{path}.memory", "memories belong in identity or conversation")
    else:
        errors.add(path, 'needs "role" (a message) or "memory" (a memory key)')


def _clean_token_ids(token_ids, path, errors):
    """The node's token ids as given (None when absent, to be tokenized)."""
    if token_ids is None:
        return None
    if not isinstance(token_ids, list):
        errors.add(path, "must be a list of integers")
        return None
    if not token_ids:
        errors.add(path, "must not be empty (leave it out to have it tokenized)")
    # A fast path for the common, valid case: 200k ids must not crawl.
    elif not all(_is_int(t) and 0 <= t <= MAX_TOKEN_ID for t in token_ids):
        for i, t in enumerate(token_ids):
            if not _is_int(t):
                errors.add(f"{path}[{i}]", "not an integer")
            elif not 0 <= t <= MAX_TOKEN_ID:
                errors.add(f"{path}[{i}]", "not a token id (out of range)")
    return token_ids


def _json_type(value):
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list"}.get(type(value), "an object")


def _check_node_count(sections, errors):
    """Refuse more nodes than SNAPSHOT_MAX_NODES, before any is checked.

    A token holder stored a 300,000-node snapshot (12 MB, no responses) in
    18 s of a web worker; no snapshot a model can read has that many.
    """
    count, limit = sum(len(nodes) for nodes in sections.values()), settings.SNAPSHOT_MAX_NODES
    if count > limit:
        errors.add("snapshot", f"{count} nodes, more than the server's limit of {limit} (SNAPSHOT_MAX_NODES)")
        errors.raise_if_any()


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
            errors.add(_shown(key), f"unknown field (a snapshot has {', '.join(TOP_LEVEL_FIELDS)})")

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
        taken_at = _clean_time(data["taken_at"], "taken_at", errors)
        if taken_at is not None and (problem := _in_the_future(taken_at)):
            errors.add("taken_at", problem)
            taken_at = None

    given = {}
    for section in SECTION_ORDER:
        nodes = data.get(section.value)
        if section.value not in data:
            # The conversation must hold something (below); the other sections may be empty.
            errors.add(section.value, "required (a non-empty list of nodes)" if section.value == "conversation"
                       else "required (a list of nodes, possibly empty)")
        elif not isinstance(nodes, list):
            errors.add(section.value, f"must be a list of nodes, not {_json_type(nodes)}")
        else:
            given[section] = nodes
    _check_node_count(given, errors)
    sections = {
        section: [_clean_node(node, section, f"{section.value}[{i}]", errors) for i, node in enumerate(nodes)]
        for section, nodes in given.items()
    }
    if data.get(Section.CONVERSATION.value) == []:
        errors.add("conversation", "must not be empty")

    errors.raise_if_any()
    return {"agent": name, "taken_at": taken_at, "sections": sections}


def check_vocabulary(cleaned, vocab_size, source, *, limit=None):
    """Raise SnapshotError naming each given token id >= vocab_size (from `source`).

    Ids the server tokenized itself need no check; only those the snapshot gave.
    `limit` words the bound where the server did not give the size itself.
    """
    errors = _Errors()
    limit = limit or f"outside the model's vocabulary (ids 0 to {vocab_size - 1}, from {source})"
    for section, nodes in cleaned["sections"].items():
        for index, node in enumerate(nodes):
            ids = node["token_ids"]
            if ids is None or max(ids) < vocab_size:
                continue
            for k, token in enumerate(ids):
                if token >= vocab_size:
                    errors.add(f"{section.value}[{index}].token_ids[{k}]", f"{token} is {limit}")
    errors.raise_if_any()
