"""The commands as a user runs them with a server down: the one error that
matters, not a WARNING line per retried attempt (those with -v 2); and help for
every option."""

import os
import socket
import subprocess
import sys

import pytest
from django.core.management import load_command_class

from scoring.models import Agent
from tests.conftest import BASE_DIR, _database_url

DEMO_SNAPSHOT = BASE_DIR / "scoring" / "demo" / "poc_snapshot.json"


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("verbosity, warnings", [("1", False), ("2", True)])
def test_import_with_the_server_down_shows_the_error_alone(verbosity, warnings):
    Agent.objects.create(name="poc", base_url=f"http://127.0.0.1:{closed_port()}/v1", model="memscore-ref")
    env = {**os.environ, "DATABASE_URL": _database_url(), "MEMSCORE_RETRY_BACKOFF": "0.01",
           "MEMSCORE_CALL_ATTEMPTS": "2"}

    done = subprocess.run([sys.executable, "manage.py", "import_snapshot", str(DEMO_SNAPSHOT), "--agent", "poc",
                           "-v", verbosity], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("CommandError: nothing imported: the inference server at http://127.0.0.1:")
    assert "cannot connect" in lines[-1]
    retried = [line for line in lines if "WARNING scoring.client.errors: attempt" in line]
    if warnings:
        assert retried
    else:
        assert lines == [lines[-1]], done.stderr


def test_export_matrix_says_what_its_formats_are():
    text = load_command_class("scoring", "export_matrix").create_parser("manage.py", "export_matrix").format_help()
    assert "--format {csv,json} csv (a header line, then a record per line) or json (one document) [csv]" in \
        " ".join(text.split())
