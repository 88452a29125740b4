"""Commands add_agent and import_snapshot."""

import io
import re
import sys

import pytest
from django.core.management import CommandError, call_command

from scoring.models import Activity, Agent, Memory, Node, Snapshot
from tests.snapshot_data import BAD_CASES, NODES, as_bytes, snapshot_doc
from tests.snapshot_hardening import HARD_CASES


def _counts():
    return (Snapshot.objects.count(), Node.objects.count(), Memory.objects.count())


def _run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- add_agent --------------------------------------------------------------------

def test_it_adds_an_agent_and_prints_a_working_token(db):
    out = _run("add_agent", "helper", "--url", "http://127.0.0.1:8765/v1", "--model", "memscore-ref",
               "--api-key-env", "MEMSCORE_AGENT_KEY_HELPER", "--concurrency", "12")
    agent = Agent.objects.get(name="helper")
    assert f"id {agent.pk}" in out
    token = re.search(r"token \(shown once\): (\S+)", out).group(1)
    assert agent.check_ingest_token(token)
    assert (agent.model, agent.api_key_env, agent.score_concurrency, agent.api_key) == (
        "memscore-ref", "MEMSCORE_AGENT_KEY_HELPER", 12, ""
    )
    assert Activity.objects.get().actor_name == "command line"


def test_it_refuses_a_duplicate_agent(db):
    _run("add_agent", "helper", "--url", "http://127.0.0.1:8765/v1", "--model", "m")
    with pytest.raises(CommandError, match="already exists"):
        _run("add_agent", "helper", "--url", "http://other.example.com/v1", "--model", "m2")
    assert Agent.objects.get().base_url == "http://127.0.0.1:8765/v1"


@pytest.mark.parametrize(
    "args, message",
    [
        # Named as typed on the command line (test_command_add_agent.py has the rest).
        (["bad name!", "--url", "http://127.0.0.1:1/v1", "--model", "m"], "NAME:"),
        (["helper", "--url", "not a url", "--model", "m"], "--url:"),
        (["helper", "--url", "http://127.0.0.1:1/v1", "--model", "m", "--concurrency", "0"], "--concurrency:"),
    ],
)
def test_it_refuses_invalid_settings(db, args, message):
    with pytest.raises(CommandError, match=message):
        _run("add_agent", *args)
    assert not Agent.objects.exists()


# --- import_snapshot ----------------------------------------------------------------


def test_it_imports_a_file_and_prints_only_the_id(offline_agent, tmp_path):
    path = tmp_path / "snap.json"
    path.write_bytes(as_bytes(snapshot_doc(token_ids=True)))
    out = _run("import_snapshot", str(path), "--agent", "poc")
    snapshot = Snapshot.objects.get()
    assert out == f"{snapshot.pk}\n"
    assert snapshot.source == Snapshot.Source.CLI and snapshot.node_count == NODES
    assert Activity.objects.get().actor_name == "command line"


def test_it_takes_the_agent_by_id_as_the_other_commands_do(offline_agent, tmp_path):
    # Before, only a name: --agent 1 said there was no agent named '1'.
    path = tmp_path / "snap.json"
    path.write_bytes(as_bytes(snapshot_doc(token_ids=True)))
    out = _run("import_snapshot", str(path), "--agent", str(offline_agent.pk))
    assert out == f"{Snapshot.objects.get(agent=offline_agent).pk}\n"


def test_it_reads_stdin(offline_agent, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(as_bytes(snapshot_doc(token_ids=True)))))
    out = _run("import_snapshot", "-", "--agent", "poc")
    assert out.strip() == str(Snapshot.objects.get().pk)


def test_it_tokenizes_with_the_server(agent, tmp_path):
    path = tmp_path / "snap.json"
    path.write_bytes(as_bytes(snapshot_doc()))
    _run("import_snapshot", str(path), "--agent", "poc")
    assert Snapshot.objects.get().token_count > NODES


def test_it_lists_the_field_errors_and_imports_nothing(offline_agent, tmp_path):
    path = tmp_path / "snap.json"
    for case_id, mutate, message in BAD_CASES:
        doc = snapshot_doc(token_ids=True)
        mutate(doc)
        path.write_bytes(as_bytes(doc))
        with pytest.raises(CommandError) as raised:
            _run("import_snapshot", str(path), "--agent", "poc")
        assert "nothing imported" in str(raised.value), case_id
        assert f"  {message}" in str(raised.value), (case_id, str(raised.value))
    assert _counts() == (0, 0, 0)


def test_it_reports_a_missing_file_an_unknown_agent_and_a_server_failure(offline_agent, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        _run("import_snapshot", str(tmp_path / "nope.json"), "--agent", "poc")
    path = tmp_path / "snap.json"
    path.write_bytes(as_bytes(snapshot_doc()))
    with pytest.raises(CommandError, match=r"no agent with id or name 'ghost' \(agents: poc; add_agent creates one\)"):
        _run("import_snapshot", str(path), "--agent", "ghost")
    with pytest.raises(CommandError, match="nothing imported: .*cannot connect"):
        _run("import_snapshot", str(path), "--agent", "poc")
    assert _counts() == (0, 0, 0)


@pytest.mark.parametrize("case_id, build, message", HARD_CASES, ids=[c[0] for c in HARD_CASES])
def test_input_the_database_cannot_hold_is_listed(offline_agent, tmp_path, case_id, build, message):
    path = tmp_path / "snap.json"
    path.write_bytes(build())
    with pytest.raises(CommandError) as raised:
        _run("import_snapshot", str(path), "--agent", "poc")
    assert f"  {message}" in str(raised.value), str(raised.value)
    assert _counts() == (0, 0, 0)


def test_importing_the_same_file_again_prints_the_first_id(offline_agent, tmp_path):
    path = tmp_path / "snap.json"
    path.write_bytes(as_bytes(snapshot_doc(token_ids=True)))
    first = _run("import_snapshot", str(path), "--agent", "poc")
    err = io.StringIO()
    out = io.StringIO()
    call_command("import_snapshot", str(path), "--agent", "poc", stdout=out, stderr=err)
    assert out.getvalue() == first == f"{Snapshot.objects.get().pk}\n"
    assert "already imported" in err.getvalue()


def test_it_refuses_a_key_variable_outside_the_allowed_prefix(db):
    with pytest.raises(CommandError, match="MEMSCORE_AGENT_KEY_"):
        _run("add_agent", "helper", "--url", "http://127.0.0.1:8765/v1", "--model", "m",
             "--api-key-env", "DATABASE_URL")
    assert not Agent.objects.exists()
