"""A refserver process shared by the tests that do not change its faults or model,
and helpers to build chat prompts. Tests that need their own server (faults,
training, flags) start one with run_refserver."""

from __future__ import annotations

import sys
from pathlib import Path

# The `pytest` script, unlike `python -m pytest`, leaves the repository root off
# sys.path, and this directory's name would then make `refserver` a namespace
# package of test files. Put the real package first.
REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import httpx  # noqa: E402
import pytest  # noqa: E402

from refserver.corpus import render_message  # noqa: E402
from refserver.testing import run_refserver  # noqa: E402


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    with run_refserver(tmp_path_factory.mktemp("refserver-state")) as handle:
        yield handle


@pytest.fixture(scope="session")
def client(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        yield c


@pytest.fixture
def tokenize(client):
    def encode(text: str) -> list[int]:
        response = client.post("/tokenize", json={"model": "memscore-ref", "prompt": text, "add_special_tokens": False})
        assert response.status_code == 200, response.text
        return response.json()["tokens"]

    return encode


@pytest.fixture
def chat():
    """chat(("user", "Hi"), ("assistant", "Hello")) -> the ChatML text memscore sends."""

    def render(*messages: tuple[str, str]) -> str:
        return "".join(render_message(role, text) for role, text in messages)

    return render
