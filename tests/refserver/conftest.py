"""Fixtures of the refserver tests.

The server is module-scoped: each test module gets its own, which keeps one
module's training jobs from changing another's model.
"""

from __future__ import annotations

import httpx
import pytest

from refserver.corpus import render_message
from refserver.testing import run_refserver


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_refserver(tmp_path_factory.mktemp("refserver-state")) as handle:
        yield handle


@pytest.fixture(scope="module")
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
