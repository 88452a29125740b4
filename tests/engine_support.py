"""Snapshots for the engine's tests, and scoring done independently of the engine.

`conversation_doc` builds a snapshot document whose assistant responses repeat
facts from the memories before them, so removing a memory really changes how
likely the reference server finds them. `independent_deltas` computes the
leave-one-out matrix from the Node rows with plain httpx calls to /score,
the way docs/scoring.md defines it, to check the engine against.
"""

import httpx
import pytest

from scoring.importing import import_snapshot
from scoring.models import Node, Section, Snapshot

FACTS = [
    ("people/alice", "Alice runs the Thursday 10:30 sync in room Kepler.",
     "Alice's sync is Thursday at 10:30 in Kepler."),
    ("places/office", "Desk 14 at Platform, door code 4471#.",
     "Your desk is 14 at Platform and the code is 4471#."),
    ("people/bob", "Bob prefers tea, never coffee, and bikes to work.",
     "Bob would like tea, not coffee."),
    ("projects/atlas", "Atlas ships on the 3rd of December to Rotterdam.",
     "Atlas ships on 3 December, to Rotterdam."),
    ("habits/sam", "Sam runs at 6am by the canal every weekday.",
     "You run at 6am by the canal."),
    ("people/carol", "Carol is the on-call lead for the storage team this week.",
     "Carol is on call for storage this week."),
]
# places/office's text again under a key with markup in it: a duplicate pair (groups).
COPY = "notes/<b>office</b>"
FACTS_WITH_COPY = [*FACTS, (COPY, FACTS[1][1], "Desk 14 at Platform, the code is 4471#.")]


def groups_run(agent):
    """A groups run of FACTS_WITH_COPY at threshold 100: only the "people"
    group goes to stage 2 ("identity" is scored as a group only)."""
    from scoring.engine import run_inline, start_run

    return run_inline(start_run(make_snapshot(agent, facts=FACTS_WITH_COPY), "groups", params={"threshold": 100}))
# Eight facts in order; the last ones come too late (past 60% of the tokens) for incremental.
FACTS_WITH_LATE = FACTS + [
    ("people/dave", "Dave fixes the coffee machine on Fridays.", "Dave fixes it on Fridays."),
    ("people/erin", "Erin is away until the 30th in Lisbon.", "Erin is in Lisbon until the 30th."),
]


def conversation_doc(agent="poc", *, turns=6, facts=FACTS, repeat_key=True, identity=True,
                     taken_at="2026-11-20T12:00:00Z", extra_memories=0):
    """A snapshot document: identity memories, then user / memory / assistant turns.

    With repeat_key the first fact's memory appears again later, not adjacent
    (the reference de-duplicated only adjacent keys). extra_memories adds that
    many filler memories (with responses) to make bigger snapshots.
    """
    facts = list(facts)
    for i in range(extra_memories):
        facts.append((f"filler/{i:03d}", f"Filler fact {i}: locker {i * 7 % 97} holds box {i}.",
                      f"Locker {i * 7 % 97} holds box {i}."))
    doc = {
        "agent": agent,
        "taken_at": taken_at,
        "system": [{"role": "system", "text": "You are poc, Sam's assistant."}],
        "identity": [],
        "journal": [{"role": "system", "text": "Journal: a quiet week at the office."}],
        "conversation": [],
    }
    if identity:
        doc["identity"] = [
            {"memory": "identity/core", "text": "I am poc and I answer briefly.",
             "timestamp": "2026-11-01T09:00:00Z"},
            {"memory": "identity/sam", "text": "Sam lives in Leeds and works at Platform.",
             "timestamp": "2026-11-01T09:00:00Z"},
        ]
    conv = doc["conversation"]
    minute = 0

    def stamp():
        nonlocal minute
        minute += 1
        return f"2026-11-20T{8 + minute // 60:02d}:{minute % 60:02d}:00Z"

    for i in range(max(turns, len(facts))):
        key, memory, answer = facts[i % len(facts)]
        conv.append({"role": "user", "text": f"Question {i}: remind me about {key}?", "timestamp": stamp()})
        if i < len(facts):
            conv.append({"memory": key, "text": memory, "timestamp": stamp()})
        conv.append({"role": "assistant", "text": answer, "timestamp": stamp()})
        if repeat_key and i == 2:
            conv.append({"memory": facts[0][0], "text": facts[0][1], "timestamp": stamp()})
    if identity:
        conv.append({"role": "user", "text": "Where do I live?", "timestamp": stamp()})
        conv.append({"memory": "identity/sam", "text": "Sam lives in Leeds and works at Platform.",
                     "timestamp": stamp()})
        conv.append({"role": "assistant", "text": "You live in Leeds.", "timestamp": stamp()})
    return doc


def make_snapshot(agent, doc=None, **kwargs):
    """Import a snapshot the way users do (ids come from the server's /tokenize)."""
    return import_snapshot(agent, doc or conversation_doc(agent.name, **kwargs),
                           source=Snapshot.Source.CLI)


def node_rows(snapshot):
    order = {s: i for i, s in enumerate([Section.SYSTEM, Section.IDENTITY, Section.JOURNAL,
                                          Section.CONVERSATION])}
    nodes = list(Node.objects.filter(snapshot=snapshot))
    return sorted(nodes, key=lambda n: (order[n.section], n.index))


def build_ids(nodes, start=0, end=None, skip=lambda node: False):
    """tokens(range, filter) written out plainly, for checking the engine."""
    ids = []
    for n in nodes:
        if n.section == Section.CONVERSATION and not (start <= n.index < (end if end is not None else 10**9)):
            continue
        if n.section in (Section.IDENTITY, Section.CONVERSATION) and skip(n):
            continue
        ids.extend(n.token_ids)
    return ids


def score(base_url, ids):
    r = httpx.post(f"{base_url}/score", json={"model": "memscore-ref", "prompt": ids, "logprobs": 1},
                   timeout=60)
    r.raise_for_status()
    return [s["total_logprob"] for s in r.json()["scores"]]


def independent_deltas(base_url, snapshot, start=0, end=None):
    """{key: {response node id: baseline - without}} over conversation [start, end)."""
    nodes = node_rows(snapshot)
    responses = [n for n in nodes if n.section == Section.CONVERSATION and n.role == "assistant"
                 and start <= n.index < (end if end is not None else 10**9)]
    keys = list(dict.fromkeys(n.memory_key for n in nodes if n.memory_key))
    baseline = score(base_url, build_ids(nodes, start, end))
    out = {}
    for key in keys:
        without = score(base_url, build_ids(nodes, start, end, skip=lambda n, k=key: n.memory_key == k))
        out[key] = {r.id: b - w for r, b, w in zip(responses, baseline, without, strict=True)}
    return out


def before_memories(snapshot):
    """{key: response node ids before the key's first node}, from the Node rows
    in the model's order: what leaving the key out cannot change (a failed
    call's cells there are still known: unaffected)."""
    before, seen_responses = {}, []
    for n in node_rows(snapshot):
        if n.memory_key and n.memory_key not in before:
            before[n.memory_key] = set(seen_responses)
        if n.section == Section.CONVERSATION and n.role == "assistant":
            seen_responses.append(n.id)
    return before


def cells_by_key(run):
    """{key: {response id: delta or None}} of a run's stored cells."""
    out = {}
    for key, response_id, delta in run.cells.values_list("memory__key", "response_id", "delta"):
        out.setdefault(key, {})[response_id] = delta
    return out


@pytest.fixture(scope="module", name="refserver")
def private_refserver(tmp_path_factory):
    """A reference server of the test module's own (import it into the module).

    Scoring tests compare numbers over many calls: another module's training
    job swapping the session server's model, or its counters, must not reach them.
    """
    from refserver.testing import run_refserver

    with run_refserver(tmp_path_factory.mktemp("engine-refserver")) as server:
        yield server
