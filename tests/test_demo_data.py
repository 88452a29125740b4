"""The hand-written demo snapshot, and seed_demo."""

import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from scoring.importing import parse_snapshot_json, validate_snapshot
from scoring.management.commands.seed_demo import DEMO_SNAPSHOT
from scoring.models import Agent, Memory, Snapshot
from scoring.roles import OPERATOR, REVIEWER


def _demo():
    return json.loads(DEMO_SNAPSHOT.read_text())


def test_it_validates():
    cleaned = validate_snapshot(parse_snapshot_json(DEMO_SNAPSHOT.read_bytes()))
    assert cleaned["agent"] == "poc"


def test_it_has_the_shape_the_demo_needs():
    doc = _demo()
    conversation = doc["conversation"]
    responses = [n for n in conversation if n.get("role") == "assistant"]
    memory_nodes = [n for n in conversation if "memory" in n]
    keys = [n["memory"] for n in memory_nodes]
    assert len(doc["system"]) == 1
    assert 2 <= len(doc["identity"]) <= 3 and all(n["memory"].startswith("identity/") for n in doc["identity"])
    assert len(doc["journal"]) >= 1
    assert len(responses) >= 45
    assert len(set(keys)) >= 20
    assert len(keys) > len(set(keys))  # some memories surface twice
    assert all(n.get("timestamp") for n in conversation)
    # No ids: the demo tokenizes with whatever server it points at.
    assert not any("token_ids" in n for section in ("system", "identity", "journal") for n in doc[section])
    assert not any("token_ids" in n for n in conversation)


def test_its_responses_draw_on_memories_and_one_memory_on_nothing():
    doc = _demo()
    conversation = doc["conversation"]
    memories = {n["memory"]: n["text"] for n in conversation if "memory" in n}
    responses = [n["text"] for n in conversation if n.get("role") == "assistant"]
    # Specifics that appear only in one memory and in the responses that use it.
    specifics = {
        "places/office": "4471#", "projects/bcachefs-tests": "snapshot_delete_race",
        "travel/lisbon": "QX7-2214", "pets/cat": "k/d", "home/plants": "Gerald",
        "work/oncall": "Marek Nowak", "projects/tern": "52.26.0", "people/mum": "Memfys",
    }
    for key, specific in specifics.items():
        assert specific in memories[key]
        assert any(specific in text for text in responses), key
    irrelevant = memories["misc/parking-2019"]
    for word in ("Gillygate", "YK40218", "York", "parking"):
        assert word in irrelevant and not any(word in text for text in responses)
    # Chit-chat that needs no memory is there too.
    assert any("Python" in n["text"] for n in conversation if n.get("role") == "user")


def test_seed_demo_sets_everything_up_and_can_run_again(agent, ref):
    agent.delete()  # seed_demo creates its own "poc"
    out = io.StringIO()
    call_command("seed_demo", "--base-url", ref.base_url, "--password", "pw-demo-123", stdout=out)
    demo = User.objects.get(username="demo")
    assert demo.is_superuser and demo.is_staff and demo.check_password("pw-demo-123")
    assert demo.groups.filter(name=OPERATOR).exists()
    for name in ("alice", "bob"):
        reviewer = User.objects.get(username=name)
        assert reviewer.check_password("pw-demo-123") and reviewer.groups.filter(name=REVIEWER).exists()
    poc = Agent.objects.get(name="poc")
    assert (poc.base_url, poc.model) == (ref.base_url, "memscore-ref")
    snapshot = Snapshot.objects.get(agent=poc)
    assert snapshot.response_count >= 45 and snapshot.memory_count >= 23
    assert all(n.token_ids for n in snapshot.nodes.all())
    assert f"snapshot {snapshot.pk} imported" in out.getvalue()

    # Again, with another server and password: updated, nothing duplicated.
    out = io.StringIO()
    call_command("seed_demo", "--base-url", "http://127.0.0.1:9/v1", "--password", "pw-other-456", stdout=out)
    assert "already there" in out.getvalue()
    assert Snapshot.objects.count() == 1 and Agent.objects.count() == 1
    assert Memory.objects.filter(agent=poc).count() == snapshot.memory_count
    poc.refresh_from_db()
    assert poc.base_url == "http://127.0.0.1:9/v1"
    assert User.objects.get(username="demo").check_password("pw-other-456")
    assert User.objects.filter(username__in=["demo", "alice", "bob"]).count() == 3


def test_seed_demo_sets_the_agents_training_context(agent, ref):
    agent.delete()
    call_command("seed_demo", "--base-url", ref.base_url, "--password", "pw-demo-123",
                 "--training-context", "without_memories", stdout=io.StringIO())
    assert Agent.objects.get(name="poc").training_context == Agent.TrainingContext.WITHOUT_MEMORIES



@pytest.mark.parametrize("content, words", [
    (None, "cannot read"),
    ("{not json", "the demo snapshot is invalid"),
    ('{"agent": "poc", "conversation": 3}', "the demo snapshot is invalid"),
])
def test_seed_demo_refuses_a_snapshot_it_cannot_use_and_changes_nothing(agent, ref, tmp_path, content, words):
    path = tmp_path / "demo.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CommandError, match=words):
        call_command("seed_demo", "--base-url", ref.base_url, "--snapshot", str(path), stdout=io.StringIO())
    assert not User.objects.filter(username="demo").exists()
    assert not Snapshot.objects.exists()
