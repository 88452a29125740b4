"""Token sequences of a snapshot: tokens(range, filter) as in the reference.

A sequence is the system nodes, then identity, then journal, then the
conversation entries in [start, end), with memory nodes left out by the
filter. Every node's ids are stored with it, so a sequence is a selection of
stored ids: the snapshot's nodes are loaded once, a filter is a numpy mask
over the nodes, and the kept nodes' id lists are joined (a few milliseconds
for 200k tokens in 2,000 nodes; numpy's tolist() of the tokens would be ten
times slower, and the server wants a JSON list).

`sequence()` also gives the spans of the assistant responses in it, found
with the agent's ChatTemplate (its response header and end-of-turn ids,
tokenized once per process by `chat_template`), so any server that returns
per-token prompt log-probabilities can score them.
"""

import functools
import hashlib
import logging
import threading
from dataclasses import dataclass

import numpy as np
from django.core.cache import cache

from scoring.models import Node, ScoreCall, Section
from scoring.models.snapshots import SECTION_ORDER

Filter = ScoreCall.Filter
log = logging.getLogger(__name__)

# Snapshots never change after import, so a worker keeps the last few it used.
_CACHE_SIZE = 4
# Marks where {text} goes when the header is cut out of the message template.
_TEXT_MARK = "\x00"


class TemplateError(ValueError):
    """The agent's chat-template settings do not fit its server or its snapshot's nodes."""


@dataclass(frozen=True)
class ChatTemplate:
    """What memscore needs of an agent's chat template to find the responses.

    header: the ids of the message template's part before {text}, rendered
    with role "assistant"; end_of_turn: the id that ends a response (kept in
    it); prefix: ids put before every prompt (a BOS).
    """

    header: tuple
    end_of_turn: int
    prefix: tuple = ()


def response_header(message_template):
    """The text of the message template before {text}, for an assistant message."""
    return message_template.format(role="assistant", text=_TEXT_MARK).split(_TEXT_MARK)[0]


_templates = {}
_templates_lock = threading.Lock()
# How long the template's ids are shared between processes (Django's cache:
# Redis where configured). A process keeps its own for its life, as the
# snapshots' stored ids assume the server's tokenizer stays the same; sharing
# them saves every fresh process (a command-line run, a new worker) a
# /tokenize round trip before its first call, and a changed tokenizer is
# seen again within this long.
SHARED_TEMPLATE_SECONDS = 60 * 60


def chat_template(agent, tokenize):
    """The agent's ChatTemplate, tokenized with `tokenize` (its client's) once
    per process, and shared through Django's cache for SHARED_TEMPLATE_SECONDS.

    Raises TemplateError when the end-of-turn setting is not one token, and
    the client's errors when the server cannot tokenize.
    """
    key = (agent.pk, agent.base_url, agent.model, agent.backend, agent.message_template,
           agent.end_of_turn, tuple(agent.prefix_ids))
    found = _templates.get(key)
    if found is not None:
        return found
    shared_key = "chat-template:" + hashlib.sha256(repr(key).encode()).hexdigest()
    header, end = _shared(shared_key) or (None, None)
    if header is None:
        header = tokenize(response_header(agent.message_template))
        end = tokenize(agent.end_of_turn)
        _share(shared_key, (header, end))
    if len(end) != 1:
        raise TemplateError(
            f"agent {agent.name}: the end-of-turn setting {agent.end_of_turn!r} is {len(end)} tokens "
            f"({end}) on the server, not one: set it to the text of the model's end-of-turn token"
        )
    if not header:
        raise TemplateError(
            f"agent {agent.name}: the message template has nothing before {{text}} for an assistant "
            "message, so memscore cannot tell where a response starts"
        )
    template = ChatTemplate(header=tuple(header), end_of_turn=end[0], prefix=tuple(agent.prefix_ids))
    with _templates_lock:
        _templates[key] = template
    return template


def _shared(key):
    """The (header ids, end-of-turn ids) another process tokenized, or None.
    The cache only saves a round trip: when it cannot answer, the server is asked."""
    try:
        found = cache.get(key)
    except Exception:
        log.warning("the cache did not answer for the chat template; asking the server", exc_info=True)
        return None
    if isinstance(found, tuple) and len(found) == 2 and all(isinstance(ids, list) for ids in found):
        return found
    return None


def _share(key, ids):
    """Keep (header ids, end-of-turn ids) for other processes; only a tokenized
    template is kept, refused settings are asked again (they may be mended)."""
    header, end = ids
    if len(end) != 1 or not header:
        return
    try:
        cache.set(key, (list(header), list(end)), SHARED_TEMPLATE_SECONDS)
    except Exception:
        log.warning("the cache did not keep the chat template", exc_info=True)


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
        # Names for errors, as the snapshot format has them: conversation[12].
        self.node_names = [f"{r[0]}[{r[1]}]" for r in rows]
        self.is_response = [r[0] == Section.CONVERSATION and r[3] == "assistant" for r in rows]
        self._spans = {}
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

    def _kept(self, start, end, filter, key):
        """Positions of the nodes of the context with entries [start, end), filtered."""
        mask = (self.conv_index < 0) | ((self.conv_index >= start) & (self.conv_index < end))
        if filter in (Filter.SKIP_KEY, Filter.SKIP_KEYS):
            # skip_keys: `key` is the collection of keys left out (an ablation, a group).
            mask &= ~(self.filterable & self._left_out(filter, key))
        elif filter == Filter.SKIP_ALL:
            mask &= ~(self.filterable & (self.key_code >= 0))
        elif filter != Filter.NONE:
            raise ValueError(f"unknown filter {filter!r}")
        return np.flatnonzero(mask).tolist()

    def tokens(self, start, end, filter=Filter.NONE, key=None):
        """The ids of the context with conversation entries [start, end), filtered
        (`key`: one key for skip_key, a list of keys for skip_keys)."""
        ids = []
        for i in self._kept(start, end, filter, key):
            ids.extend(self.node_ids_list[i])
        return ids

    def sequence(self, start, end, filter=Filter.NONE, key=None, *, template):
        """(ids, spans): the template's prefix, then tokens(start, end, filter, key);
        and the [start, end) positions of each conversation response in them, from
        after its header through its last end-of-turn id, in order.

        Raises TemplateError naming the node when a response does not fit the template.
        """
        ids = list(template.prefix)
        spans = []
        for i in self._kept(start, end, filter, key):
            if self.is_response[i]:
                first, last = self._response_span(i, template)
                spans.append((len(ids) + first, len(ids) + last))
            ids.extend(self.node_ids_list[i])
        return ids, spans

    def causal_sequence(self, start, end, key, *, template, filter=Filter.SKIP_KEY):
        """sequence() of a call that leaves memories out (skip_key: one `key`;
        skip_keys: a collection of keys), and where it can first differ from
        its baseline.

        Returns (ids, spans, changed_from, unaffected): positions before
        changed_from (where the first node left out was) are the baseline's
        ids, so a causal model predicts them as in the baseline; the first
        `unaffected` spans end before it, their deltas exactly zero. Keys
        not in the sequence change nothing: changed_from is len(ids).
        """
        ids, spans = self.sequence(start, end, filter, key, template=template)
        before = self._kept_before_removed(start, end, key, filter)
        if before is None:
            return ids, spans, len(ids), len(spans)
        changed_from = len(template.prefix) + sum(len(self.node_ids_list[i]) for i in before)
        return ids, spans, changed_from, sum(self.is_response[i] for i in before)

    def unaffected_responses(self, start, end, key, *, filter=Filter.SKIP_KEY):
        """How many of the responses in [start, end) end before the first node
        such a call leaves out: their deltas are exactly zero, whatever the
        server says or fails to say (causal_sequence's `unaffected`, without a
        template: a failed call's cells before its memory are known)."""
        before = self._kept_before_removed(start, end, key, filter)
        if before is None:
            return len(self.responses(start, end))
        return sum(self.is_response[i] for i in before)

    def _kept_before_removed(self, start, end, key, filter):
        """The nodes a call keeps before the first one it leaves out, or None
        when it leaves out none of [start, end)."""
        in_range = (self.conv_index < 0) | ((self.conv_index >= start) & (self.conv_index < end))
        removed = np.flatnonzero(in_range & self.filterable & self._left_out(filter, key))
        if not len(removed):
            return None
        kept = self._kept(start, end, filter, key)
        return kept[: int(np.searchsorted(kept, int(removed[0])))]

    def _left_out(self, filter, key):
        """Per node, whether its memory key is one the filter leaves out."""
        if filter == Filter.SKIP_KEY:
            return self.key_code == self.key_codes.get(key, -2)
        if filter == Filter.SKIP_KEYS:
            return np.isin(self.key_code, [self.key_codes[k] for k in key or () if k in self.key_codes])
        raise ValueError(f"no causal window for filter {filter!r}")

    def _response_span(self, i, template):
        """[first, last) of node i's response within its own ids (kept per template)."""
        found = self._spans.get((i, template))
        if found is not None:
            return found
        node = self.node_ids_list[i]
        header = list(template.header)
        if node[:len(header)] != header:
            raise TemplateError(
                f"{self.node_names[i]} does not start with the response header {header} of the "
                f"agent's message template (its ids start {node[:len(header) + 2]}): the nodes were "
                "tokenized with another template, or the message template setting is wrong"
            )
        ends = [j for j, token in enumerate(node) if token == template.end_of_turn]
        if not ends or ends[-1] < len(header):
            raise TemplateError(
                f"{self.node_names[i]} has no end-of-turn id {template.end_of_turn} after its "
                "header: check the agent's end-of-turn setting"
            )
        found = self._spans[i, template] = (len(header), ends[-1] + 1)
        return found

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
