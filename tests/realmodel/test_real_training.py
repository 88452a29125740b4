"""/train on the real model: LoRA that changes what the model says, kept across a
restart, with today's idempotency (a repeated key starts nothing)."""

from __future__ import annotations

import httpx
import pytest
from realmodel_support import ANSWER, MEMORIES, context_text, engine_args, message, score, tokenize, wait_for_job

from refserver.testing import run_refserver

pytestmark = pytest.mark.realmodel

MAX_TOKENS = 256
KEY = "realmodel-train-1"


def _training_body(client: httpx.Client) -> tuple[dict, list[int]]:
    """The answer given a context without the memory it needs, and a sample whose
    long context is cut to fit ``MAX_TOKENS``."""
    without = tokenize(client, context_text(MEMORIES[1:]))
    answer = tokenize(client, ANSWER + "<|im_end|>")
    header = len(without) - len(answer) - 1  # the context ends with the assistant header
    long_context = tokenize(client, message("user", "Tell me about the weather. " * 80) + "<|im_start|>assistant\n")
    samples = [
        {"context_ids": without[:header], "continuation_ids": answer},
        {"context_ids": long_context, "continuation_ids": tokenize(client, "It is sunny.<|im_end|>")},
    ]
    assert without[header : header + len(answer)] == answer
    return {"training_data": {"samples": samples}}, without


def test_training_changes_the_model_survives_a_restart_and_is_idempotent(tmp_path, converted_weights):
    state = tmp_path / "state"
    args = engine_args(converted_weights, "--train-steps", "12", "--train-max-tokens", str(MAX_TOKENS))
    with run_refserver(state, *args) as server, httpx.Client(base_url=server.base_url, timeout=120) as client:
        body, without = _training_body(client)
        before = score(client, without)["scores"][0]["total_logprob"]
        response = client.post("/train", json=body, headers={"Idempotency-Key": KEY})
        assert response.status_code == 200
        seen = []
        job = wait_for_job(client, response.json()["job_id"], seen=seen)
        assert job["status"] == "succeeded", job
        # While it trained, it said how far it was (a poll every 0.2 s, a step ~1-2 s).
        steps = [answer["progress"]["step"] for answer in seen if "progress" in answer]
        assert steps and steps == sorted(steps) and all(answer["progress"]["steps"] == 12 for answer in seen
                                                        if "progress" in answer)
        assert "progress" not in job
        assert job["truncated_samples"] == 1 and str(MAX_TOKENS) in job["warning"]
        assert job["training"]["steps"] == 12
        after = score(client, without)["scores"][0]["total_logprob"]
        print(f"answer without its memory: {before:.3f} nats before training, {after:.3f} after "
              f"({job['training']['seconds'] / 12:.2f} s per LoRA step)")
        assert after > before + 5
        again = client.post("/train", json=body, headers={"Idempotency-Key": KEY})
        assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["job_id"] == job["job_id"]
        assert server.stats()["jobs"] == {"succeeded": 1}
    adapters = sorted(p.name for p in (state / "adapters").iterdir())
    assert adapters == [job["job_id"]]
    with run_refserver(state, *args) as server, httpx.Client(base_url=server.base_url, timeout=120) as client:
        assert client.get(f"/train/{job['job_id']}").json()["status"] == "succeeded"
        restarted = score(client, without)["scores"][0]["total_logprob"]
        assert abs(restarted - after) <= 1e-4
        replay = client.post("/train", json=body, headers={"Idempotency-Key": KEY})
        assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"
        assert replay.json()["job_id"] == job["job_id"]
        assert server.stats()["jobs"] == {"succeeded": 1}
        assert server.stats()["train_posts"] == 1
    assert sorted(p.name for p in (state / "adapters").iterdir()) == adapters
