"""/completions: OpenAI-shaped, deterministic, streaming as server-sent events."""

from __future__ import annotations

import json

import pytest

IM_END_ID = 1
ALTERNATE = {"temperature": 0.6, "top_p": 0.95, "top_k": 20}  # what memscore asks for alternates


@pytest.fixture
def prompt(tokenize, chat):
    return tokenize(chat(("system", "You are a helpful assistant."), ("user", "How do I make a cup of tea?")) + "<|im_start|>assistant\n")


def complete(client, **body) -> dict:
    response = client.post("/completions", json={"model": "memscore-ref", **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_it_answers_in_the_openai_shape(client, prompt):
    body = complete(client, prompt=prompt, max_tokens=30, **ALTERNATE)
    assert body["object"] == "text_completion"
    assert body["model"] == "memscore-ref"
    assert body["id"].startswith("cmpl-")
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] in ("stop", "length")
    assert body["usage"] == {
        "prompt_tokens": len(prompt),
        "completion_tokens": len(choice["token_ids"]),
        "total_tokens": len(prompt) + len(choice["token_ids"]),
    }


def test_its_text_is_the_detokenized_ids_without_im_end(client, prompt):
    for seed in range(5):
        choice = complete(client, prompt=prompt, max_tokens=40, seed=seed, **ALTERNATE)["choices"][0]
        ids = choice["token_ids"]
        if choice["finish_reason"] == "stop":
            assert ids[-1] == IM_END_ID
            ids = ids[:-1]
        assert IM_END_ID not in ids
        assert "<|im_end|>" not in choice["text"]
        assert client.post("/detokenize", json={"tokens": ids}).json()["prompt"] == choice["text"]


def test_it_is_deterministic_for_the_same_request(client, prompt):
    first = complete(client, prompt=prompt, max_tokens=40, **ALTERNATE)["choices"][0]
    again = complete(client, prompt=prompt, max_tokens=40, **ALTERNATE)["choices"][0]
    assert first["token_ids"] == again["token_ids"]
    others = {tuple(complete(client, prompt=prompt, max_tokens=40, seed=s, temperature=1.0)["choices"][0]["token_ids"]) for s in range(6)}
    assert len(others) > 1  # the seed really drives the sampling


def test_it_takes_the_prompt_as_text_or_ids(client, prompt):
    text = client.post("/detokenize", json={"tokens": prompt}).json()["prompt"]
    assert complete(client, prompt=text, max_tokens=20, seed=3)["choices"] == complete(client, prompt=prompt, max_tokens=20, seed=3)["choices"]


def test_it_stops_at_max_tokens(client, tokenize):
    choice = complete(client, prompt=tokenize("The river"), max_tokens=3, temperature=0)["choices"][0]
    assert len(choice["token_ids"]) == 3
    assert choice["finish_reason"] == "length"


def test_it_stops_at_im_end(client, prompt):
    choice = complete(client, prompt=prompt, max_tokens=200, temperature=0)["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["token_ids"][-1] == IM_END_ID
    assert choice["text"] and not choice["text"].endswith("<|im_end|>")


def test_it_stops_before_a_stop_string(client, prompt):
    full = complete(client, prompt=prompt, max_tokens=40, temperature=0)["choices"][0]["text"]
    word = full.split()[1]
    choice = complete(client, prompt=prompt, max_tokens=40, temperature=0, stop=[word, "zzz"])["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["text"] == full[: full.index(word)]


def test_it_streams_server_sent_events_ending_with_done(client, prompt):
    plain = complete(client, prompt=prompt, max_tokens=40, **ALTERNATE)["choices"][0]
    with client.stream("POST", "/completions", json={"prompt": prompt, "max_tokens": 40, "stream": True, **ALTERNATE}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in events[:-1]]
    assert all(line.startswith("data: ") for line in events)
    assert "".join(c["choices"][0]["text"] for c in chunks) == plain["text"]
    assert [t for c in chunks for t in c["choices"][0]["token_ids"]] == plain["token_ids"]
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == plain["finish_reason"]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_it_reports_logprobs_of_the_sampled_tokens(client, prompt):
    choice = complete(client, prompt=prompt, max_tokens=5, temperature=0, logprobs=3)["choices"][0]
    lp = choice["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(choice["token_ids"])
    for token, logprob, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]):
        assert len(top) == 3
        # Greedy: the chosen token is the most likely one.
        assert top[token] == logprob == max(top.values())
