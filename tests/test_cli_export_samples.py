"""export_samples: the approved samples as JSON lines on stdout, the same bytes
as /candidates/export.jsonl gives for one agent or for all of them."""

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from candidate_factory import make_candidate
from django.core.management import CommandError, call_command
from django.urls import reverse

from scoring.editing import edit_and_approve
from scoring.models import Agent
from scoring.outbox import send_to_training
from tests.conftest import BASE_DIR, _database_url


def export(*args):
    out = StringIO()
    call_command("export_samples", *[str(a) for a in args], stdout=out)
    return out.getvalue().encode()


def page(cast, **query):
    r = cast.client_for(cast.viewer).get(reverse("candidate_export"), query)
    assert r.status_code == 200
    return b"".join(r.streaming_content)


@pytest.fixture
def samples(cast, agent, ref):
    """Two agents' approved samples: edited, sent (in a job the server took),
    plain, non-ASCII; and candidates that are not exported."""
    edited = make_candidate(agent, divergence=3.0)
    edit_and_approve(edited, cast.reviewer, "A better answer, café ☕.")
    sent = make_candidate(agent, divergence=2.0)
    sent.decide(cast.reviewer2, "approve", comment="good «one»")
    make_candidate(agent, divergence=5.0)  # pending: not exported
    job = send_to_training(agent, cast.operator, candidate_ids=[sent.pk])
    job.mark_accepted("job-123")
    other = Agent.objects.create(name="helper", base_url=ref.base_url, model="memscore-ref")
    theirs = make_candidate(other, response_text="Naïve résumé of the garden.")
    theirs.decide(cast.reviewer, "approve")
    return agent, other


def test_it_prints_what_the_page_exports_for_an_agent_by_name_or_id(cast, samples):
    agent, other = samples
    for mine, theirs in [(agent.name, other.name), (agent.pk, other.pk)]:
        assert export(mine) == page(cast, agent=mine)
        assert export(theirs) == page(cast, agent=theirs)
    lines = [json.loads(line) for line in export(agent.name).splitlines()]
    assert [line["provenance"]["status"] for line in lines] == ["approved", "trained"]
    assert lines[0]["text"] == "A better answer, café ☕." and lines[1]["provenance"]["server_job_id"] == "job-123"


def test_without_an_agent_it_prints_every_agents_samples_as_the_page_does(cast, samples):
    everything = export()
    assert everything == page(cast)
    assert len(everything.splitlines()) == 3
    assert {json.loads(line)["provenance"]["agent"] for line in everything.splitlines()} == {"poc", "helper"}


def test_an_agent_with_nothing_approved_prints_nothing(cast, agent):
    make_candidate(agent)
    assert export(agent.name) == b"" == page(cast, agent=agent.name)


def test_an_unknown_agent_is_an_error_that_names_it(cast, agent):
    with pytest.raises(CommandError, match="no agent with id or name 'nobody-here'"):
        export("nobody-here")
    with pytest.raises(CommandError, match="no agent with id or name '999999'"):
        export(999999)


def test_the_help_explains_the_argument():
    from scoring.management.commands.export_samples import Command

    text = Command().create_parser("manage.py", "export_samples").format_help()
    assert "/candidates/export.jsonl" in text and "by id or name" in text and "every agent" in text


@pytest.mark.django_db(transaction=True)
def test_manage_py_writes_the_same_bytes_and_stops_quietly_into_head(cast, samples):
    env = {**os.environ, "DATABASE_URL": _database_url()}
    done = subprocess.run([sys.executable, "manage.py", "export_samples", "poc"], cwd=BASE_DIR, env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == page(cast, agent="poc") and done.stderr == b""

    head = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} manage.py export_samples | head -1"],
                          cwd=BASE_DIR, env=env, capture_output=True, timeout=60)
    assert head.returncode == 0 and b"Traceback" not in head.stderr, head.stderr
    assert head.stdout == page(cast).splitlines(keepends=True)[0]
