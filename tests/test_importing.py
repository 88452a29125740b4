"""scoring.importing: validation messages, the import itself, memory upserts, tokenizing."""

import threading
from datetime import UTC, datetime

import httpx
import pytest
from django.db import connection

from scoring.importing import (
    MAX_ERRORS,
    SnapshotError,
    TokenizeError,
    import_snapshot,
    parse_snapshot_json,
    validate_snapshot,
)
from scoring.importing.validate import FUTURE_TOLERANCE
from scoring.models import Activity, Agent, Memory, Node, Section, Snapshot
from tests.snapshot_data import BAD_CASES, MEMORY_KEYS, NODES, RESPONSES, snapshot_doc
from tests.snapshot_hardening import BOUNDARY_TIMES, HARD_CASES, OUT_OF_RANGE


def _counts():
    return (Snapshot.objects.count(), Node.objects.count(), Memory.objects.count())


@pytest.mark.parametrize("case_id, mutate, message", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_it_rejects_each_kind_of_error_naming_the_field_and_imports_nothing(
    offline_agent, case_id, mutate, message
):
    doc = snapshot_doc(token_ids=True)
    mutate(doc)
    before = _counts()
    with pytest.raises(SnapshotError) as raised:
        import_snapshot(offline_agent, doc)
    assert any(e.startswith(message) for e in raised.value.errors), raised.value.errors
    assert _counts() == before
    assert not Activity.objects.exists()


def test_it_collects_every_error_not_only_the_first():
    doc = snapshot_doc(token_ids=True)
    doc["taken_at"] = "soon"
    doc["conversation"][0]["role"] = ""
    doc["conversation"][2]["token_ids"][3] = "x"
    doc["identity"][1]["memory"] = None
    with pytest.raises(SnapshotError) as raised:
        validate_snapshot(doc)
    assert raised.value.errors == [
        "taken_at: not an ISO 8601 date-time",
        "identity[1].memory: must be a non-empty string (the memory's key)",
        "conversation[0].role: must be a non-empty string",
        "conversation[2].token_ids[3]: not an integer",
    ]


def test_it_caps_the_number_of_errors():
    doc = snapshot_doc()
    doc["conversation"] = [{"role": "", "text": "x"} for _ in range(MAX_ERRORS + 30)]
    with pytest.raises(SnapshotError) as raised:
        validate_snapshot(doc)
    errors = raised.value.errors
    assert len(errors) == MAX_ERRORS + 1
    assert errors[-1] == "... and 30 more errors"


def test_it_rejects_a_document_that_is_not_an_object():
    with pytest.raises(SnapshotError) as raised:
        validate_snapshot([snapshot_doc()])
    assert raised.value.errors == ["snapshot: must be a JSON object, not a list"]


def test_it_reports_bad_json_and_duplicate_fields():
    with pytest.raises(SnapshotError) as raised:
        parse_snapshot_json(b'{"agent": "poc",')
    assert raised.value.errors[0].startswith("snapshot: not valid JSON")

    with pytest.raises(SnapshotError) as raised:
        parse_snapshot_json(b"\xff\xfe{}")
    assert raised.value.errors[0].startswith("snapshot: not UTF-8 text")

    raw = (
        '{"agent": "poc", "taken_at": "2026-11-20T12:00:00Z", "system": [], "identity": [],'
        ' "journal": [], "conversation": [{"role": "user", "role": "assistant", "text": "hi"}]}'
    )
    with pytest.raises(SnapshotError) as raised:
        validate_snapshot(parse_snapshot_json(raw))
    assert raised.value.errors == ["conversation[0].role: appears more than once in the same object"]


def test_it_imports_supplied_token_ids_as_they_are(offline_agent, cast):
    doc = snapshot_doc(token_ids=True)
    snapshot = import_snapshot(offline_agent, doc, by=cast.operator, source=Snapshot.Source.UPLOAD)

    assert (snapshot.node_count, snapshot.memory_count, snapshot.response_count) == (
        NODES, MEMORY_KEYS, RESPONSES
    )
    assert snapshot.token_count == 7 * NODES
    assert snapshot.taken_at.isoformat() == "2026-11-20T12:00:00+00:00"
    assert snapshot.imported_by == cast.operator
    reply = Node.objects.get(snapshot=snapshot, section=Section.CONVERSATION, index=2)
    assert reply.role == "assistant" and reply.is_response
    assert reply.token_ids == doc["conversation"][2]["token_ids"]
    assert reply.n_tokens == 7
    assert reply.timestamp.isoformat() == "2026-11-20T11:58:09+00:00"

    office = Node.objects.get(snapshot=snapshot, section=Section.CONVERSATION, index=1)
    assert office.memory_key == "places/office"
    assert office.memory == Memory.objects.get(agent=offline_agent, key="places/office")
    assert office.memory.text == "Desk 14 at Platform, code 4471#."
    assert set(Memory.objects.filter(agent=offline_agent).values_list("key", flat=True)) == {
        "identity/core", "identity/sam", "places/office", "people/alice",
    }
    # Messages never link to a memory.
    assert not Node.objects.filter(snapshot=snapshot, memory_key="", memory__isnull=False).exists()

    activity = Activity.objects.get()
    assert (activity.actor, activity.verb, activity.target_id) == (
        cast.operator, "imported snapshot", str(snapshot.pk)
    )
    assert activity.detail["nodes"] == NODES


def test_it_records_the_agent_as_actor_for_the_api(offline_agent):
    snapshot = import_snapshot(
        offline_agent, snapshot_doc(token_ids=True), source=Snapshot.Source.API, actor_name="agent:poc"
    )
    activity = Activity.objects.get()
    assert activity.actor is None and activity.actor_name == "agent:poc"
    assert snapshot.source == Snapshot.Source.API and snapshot.imported_by is None


def test_it_treats_a_time_without_offset_as_utc(offline_agent):
    snapshot = import_snapshot(offline_agent, snapshot_doc(token_ids=True, taken_at="2026-11-20T12:00:00"))
    assert snapshot.taken_at.isoformat() == "2026-11-20T12:00:00+00:00"


def test_it_tokenizes_nodes_without_ids_with_the_server(agent, ref):
    doc = snapshot_doc(token_ids=True)
    # Two nodes keep their made-up ids; every other node is tokenized by the server.
    kept = {"system": doc["system"][0]["token_ids"], "reply": doc["conversation"][7]["token_ids"]}
    for section in ("identity", "journal", "conversation"):
        for i, node in enumerate(doc[section]):
            if not (section == "conversation" and i == 7):
                del node["token_ids"]

    snapshot = import_snapshot(agent, doc)

    nodes = list(Node.objects.filter(snapshot=snapshot))
    assert len(nodes) == NODES
    by_position = {(n.section, n.index): n for n in nodes}
    assert by_position[("system", 0)].token_ids == kept["system"]
    assert by_position[("conversation", 7)].token_ids == kept["reply"]
    for node in nodes:
        if (node.section, node.index) in {("system", 0), ("conversation", 7)}:
            continue
        answer = httpx.post(
            f"{ref.base_url}/tokenize",
            json={"model": agent.model, "prompt": agent.render_node(node), "add_special_tokens": False},
        ).json()
        assert node.token_ids == answer["tokens"], node
        assert node.n_tokens == answer["count"]
    assert snapshot.token_count == sum(n.n_tokens for n in nodes)
    # The memory template names the key: the memory node's ids differ from its text alone.
    memory = by_position[("conversation", 1)]
    assert agent.render_node(memory).startswith("<|im_start|>memory\n[places/office]")


def test_it_imports_nothing_when_tokenizing_fails(agent, ref):
    ref.control(fail_rate=1.0, fail_endpoints=["tokenize"], fail_mode="http500")
    before = _counts()
    with pytest.raises(TokenizeError) as raised:
        import_snapshot(agent, snapshot_doc())
    assert "could not tokenize" in str(raised.value) and "HTTP 500" in str(raised.value)
    assert _counts() == before
    assert not Activity.objects.exists()


def test_it_imports_nothing_when_the_server_is_unreachable(offline_agent):
    with pytest.raises(TokenizeError) as raised:
        import_snapshot(offline_agent, snapshot_doc())
    assert "cannot connect" in str(raised.value)
    assert _counts() == (0, 0, 0)


def test_it_upserts_memories_across_snapshots(offline_agent):
    first = import_snapshot(offline_agent, snapshot_doc(token_ids=True))
    office = Memory.objects.get(agent=offline_agent, key="places/office")
    office.weight = 0.7
    office.save()

    doc = snapshot_doc(token_ids=True, taken_at="2026-11-21T12:00:00Z")
    doc["conversation"][1]["text"] = "Desk 15 now; code 9902#."
    doc["conversation"][4]["memory"] = "people/bob"
    doc["conversation"][4]["text"] = "Bob lives in Rotterdam."
    second = import_snapshot(offline_agent, doc)

    assert Memory.objects.filter(agent=offline_agent).count() == 5  # people/bob is new
    office.refresh_from_db()
    assert office.text == "Desk 15 now; code 9902#."
    assert office.weight == 0.7  # the same row, its scores kept
    assert set(office.nodes.values_list("snapshot_id", flat=True)) == {first.pk, second.pk}
    assert second.memory_count == MEMORY_KEYS

    # An older snapshot imported late adds what it has but does not roll texts back.
    old = snapshot_doc(token_ids=True, taken_at="2026-11-01T12:00:00Z")
    old["conversation"][1]["text"] = "Desk 3, long ago."
    import_snapshot(offline_agent, old)
    office.refresh_from_db()
    assert office.text == "Desk 15 now; code 9902#."


def test_it_keeps_memories_of_different_agents_apart(offline_agent):
    other = Agent.objects.create(name="other", base_url="http://127.0.0.1:9/v1", model="m")
    import_snapshot(offline_agent, snapshot_doc(token_ids=True))
    import_snapshot(other, snapshot_doc("other", token_ids=True))
    assert Memory.objects.filter(key="places/office").count() == 2
    for node in Node.objects.filter(memory_key="places/office").select_related("snapshot", "memory"):
        assert node.memory.agent_id == node.snapshot.agent_id


def test_it_uses_the_last_text_of_a_key_surfaced_twice(offline_agent):
    doc = snapshot_doc(token_ids=True)
    doc["conversation"].append(
        {"memory": "places/office", "text": "Desk 14, door code changed to 5582#.", "token_ids": [0, 9, 1]}
    )
    snapshot = import_snapshot(offline_agent, doc)
    assert Memory.objects.get(key="places/office").text == "Desk 14, door code changed to 5582#."
    assert snapshot.memory_count == MEMORY_KEYS
    assert Node.objects.filter(snapshot=snapshot, memory__key="places/office").count() == 2


@pytest.mark.django_db(transaction=True)
def test_it_imports_snapshots_of_one_agent_at_the_same_time():
    """Two imports racing to create the same memory keys both succeed, each key once."""
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="memscore-ref")
    barrier = threading.Barrier(4)
    errors = []

    def run(i):
        try:
            doc = snapshot_doc(token_ids=True, taken_at=f"2026-11-2{i}T12:00:00Z")
            doc["conversation"][4]["memory"] = f"people/friend-{i}"
            barrier.wait()
            import_snapshot(agent, doc)
        except Exception as e:  # reported below; a thread's exception would be lost
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert Snapshot.objects.count() == 4
    keys = list(Memory.objects.filter(agent=agent).values_list("key", flat=True))
    assert len(keys) == len(set(keys)) == 3 + 4  # identity/core, identity/sam, places/office + 4 friends
    assert not Node.objects.filter(memory__isnull=True).exclude(memory_key="").exists()


# --- issue 13: input that once got a 500, times out of range, roles, vocabulary, duplicates ---

@pytest.mark.parametrize("case_id, build, message", HARD_CASES, ids=[c[0] for c in HARD_CASES])
def test_it_refuses_input_the_database_cannot_hold_naming_the_field(offline_agent, case_id, build, message):
    with pytest.raises(SnapshotError) as raised:
        import_snapshot(offline_agent, parse_snapshot_json(build()))
    assert any(e.startswith(message) for e in raised.value.errors), raised.value.errors
    assert _counts() == (0, 0, 0)


@pytest.mark.parametrize("value, accepted", BOUNDARY_TIMES, ids=[v for v, _ in BOUNDARY_TIMES])
@pytest.mark.parametrize("field", ["taken_at", "conversation[2].timestamp"])
def test_it_imports_every_time_inside_the_range_and_refuses_one_past_it(
    offline_agent, cast, field, value, accepted
):
    doc = snapshot_doc(token_ids=True)
    if field == "taken_at":
        doc["taken_at"] = value
    else:
        doc["conversation"][2]["timestamp"] = value
    if not accepted:
        with pytest.raises(SnapshotError) as raised:
            import_snapshot(offline_agent, doc)
        assert raised.value.errors == [f"{field}: {OUT_OF_RANGE}"]
        return
    if field == "taken_at" and datetime.fromisoformat(value) > datetime.now(UTC) + FUTURE_TOLERANCE:
        # In range, but no snapshot is taken after the server's clock (and its skew).
        with pytest.raises(SnapshotError) as raised:
            import_snapshot(offline_agent, doc)
        assert raised.value.errors[0].startswith("taken_at: in the future: ")
        return
    snapshot = import_snapshot(offline_agent, doc)
    expected = datetime.fromisoformat(value)
    snapshot.refresh_from_db()
    stored = snapshot.taken_at if field == "taken_at" else snapshot.nodes.get(
        section=Section.CONVERSATION, index=2).timestamp
    assert stored == expected
    # Pages that show it, and later imports of the agent, keep working for everyone.
    client = cast.client_for(cast.viewer)
    for url in ("/agents/", f"/agents/{offline_agent.pk}/", f"/snapshots/{snapshot.pk}/"):
        assert client.get(url).status_code == 200, url
    import_snapshot(offline_agent, snapshot_doc(token_ids=True))


@pytest.mark.parametrize("role", ["system", "developer", "user", "assistant", "tool", "function", "ipython"])
def test_it_accepts_the_chat_roles(offline_agent, role):
    doc = snapshot_doc(token_ids=True)
    doc["conversation"][0]["role"] = role
    assert import_snapshot(offline_agent, doc).node_count == NODES


def test_it_refuses_a_role_no_chat_template_knows_naming_the_node(offline_agent):
    doc = snapshot_doc(token_ids=True)
    doc["journal"][0]["role"] = "robot"
    with pytest.raises(SnapshotError) as raised:
        import_snapshot(offline_agent, doc)
    assert raised.value.errors == [
        "journal[0].role: 'robot' is not a chat role "
        "(system, developer, user, assistant, tool, function, ipython)"
    ]


def test_it_refuses_token_ids_outside_the_served_vocabulary_naming_the_node(agent, ref):
    vocab = httpx.get(f"{ref.base_url.removesuffix('/v1')}/health").json()["vocab_size"]
    doc = snapshot_doc(token_ids=True)
    doc["conversation"][2]["token_ids"] = [0, vocab - 1, vocab, 99999]
    with pytest.raises(SnapshotError) as raised:
        import_snapshot(agent, doc)
    limit = f"outside the model's vocabulary (ids 0 to {vocab - 1}, from the server's /health)"
    assert raised.value.errors == [
        f"conversation[2].token_ids[2]: {vocab} is {limit}",
        f"conversation[2].token_ids[3]: 99999 is {limit}",
    ]
    assert _counts() == (0, 0, 0)
    doc["conversation"][2]["token_ids"] = [0, vocab - 1]
    assert import_snapshot(agent, doc).node_count == NODES


def test_it_imports_ids_unchecked_when_the_server_does_not_say_its_vocabulary(offline_agent):
    doc = snapshot_doc(token_ids=True)
    doc["conversation"][2]["token_ids"] = [99999]
    assert import_snapshot(offline_agent, doc).token_count > 0
