"""`python -m refserver --port N`: a port outside 0-65535 stops start-up with
exit status 2 and a message naming the flag (as every other flag does), not a
traceback from bind()."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from refserver.config import parse_config

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path, *args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "refserver", "--state-dir", str(tmp_path), *args],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_a_port_out_of_range_stops_start_up_naming_the_flag(tmp_path, port):
    result = _run(tmp_path, "--port", port)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "usage:" in result.stderr
    assert f"--port (or REFSERVER_PORT) must be 0 to 65535, got {port}" in result.stderr


def test_a_port_out_of_range_from_the_environment_names_the_variable_too(tmp_path):
    result = _run(tmp_path, env={"REFSERVER_PORT": "70000"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "REFSERVER_PORT" in result.stderr and "70000" in result.stderr


@pytest.mark.parametrize("port", [0, 1, 8765, 65535])
def test_every_port_in_range_is_accepted(tmp_path, port):
    assert parse_config(["--port", str(port), "--state-dir", str(tmp_path)], environ={}).port == port
