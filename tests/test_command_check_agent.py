"""manage.py check_agent NAME: one line per check, non-zero exit on a failure."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from scoring.models import Agent
from tests.engine_support import make_snapshot


def run(*args):
    out = StringIO()
    call_command("check_agent", *args, stdout=out)
    return out.getvalue()


def test_it_prints_one_line_per_check_and_passes(agent):
    make_snapshot(agent)

    lines = run("poc").splitlines()

    assert len(lines) == 9
    assert lines[0].startswith("ok    server answers: ")
    assert all(line.startswith("ok    ") for line in lines[:8])
    assert lines[-1] == "poc: every check passed."


def test_it_exits_non_zero_and_says_what_to_change(agent):
    agent.model = "qwen-32b"
    agent.save()
    out = StringIO()

    with pytest.raises(CommandError, match=r"2 checks failed: model is served"):
        call_command("check_agent", "poc", stdout=out)

    assert "FAIL  model is served: The server serves memscore-ref, not qwen-32b" in out.getvalue()


def test_it_skips_what_it_cannot_check(db):
    Agent.objects.create(name="gone", base_url="http://127.0.0.1:9/v1", model="m")
    out = StringIO()

    with pytest.raises(CommandError, match="1 check"):
        call_command("check_agent", "gone", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("FAIL  server answers:")
    assert all(line.startswith("skip  ") for line in lines[1:])


def test_it_names_the_agents_there_are(agent):
    with pytest.raises(CommandError, match=r"no agent with id or name 'nope' \(agents: poc; add_agent creates one\)"):
        run("nope")


def test_it_takes_the_agents_id_as_export_samples_and_send_training_do(agent):
    make_snapshot(agent)
    assert run(str(agent.pk)).splitlines()[-1] == "poc: every check passed."
