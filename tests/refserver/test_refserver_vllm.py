"""The vLLM surface (--api vllm): bodies shaped as vLLM's source shapes them."""

from __future__ import annotations

import math

import httpx
import pytest
from surface_support import PROMPT, SHORT, TOKENIZER, surface_client

from refserver.testing import run_refserver


@pytest.fixture(scope="module")
def vllm(tmp_path_factory):
    with run_refserver(tmp_path_factory.mktemp("vllm"), "--api", "vllm") as handle:
        yield handle


@pytest.fixture
def http(vllm):
    with surface_client(vllm) as c:
        yield c


def score(http, prompt, **extra):
    body = {"model": "memscore-ref", "prompt": prompt, "max_tokens": 1, "temperature": 0, "prompt_logprobs": 0}
    response = http.post("/v1/completions", json={**body, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_prompt_logprobs_are_null_first_then_keyed_by_the_id_as_a_string(http):
    [choice] = score(http, PROMPT)["choices"]
    entries = choice["prompt_logprobs"]
    assert len(entries) == len(PROMPT)
    assert entries[0] is None
    for token, entry in zip(PROMPT[1:], entries[1:]):
        assert list(entry) == [str(token)]  # prompt_logprobs 0: the actual token only
        assert set(entry[str(token)]) == {"logprob", "rank", "decoded_token"}
        assert entry[str(token)]["decoded_token"] == TOKENIZER.token_str(token)
        assert entry[str(token)]["rank"] >= 1 and entry[str(token)]["logprob"] < 0
    assert choice["token_ids"] is None and choice["prompt_token_ids"] is None  # only with return_token_ids
    assert choice["stop_reason"] is None


def test_prompt_logprobs_k_adds_the_top_tokens_ranked_after_the_actual_one(http):
    [choice] = score(http, SHORT, prompt_logprobs=3)["choices"]
    for token, entry in zip(SHORT[1:], choice["prompt_logprobs"][1:]):
        actual = entry[str(token)]
        assert list(entry)[0] == str(token)
        others = [e for key, e in entry.items() if key != str(token)]
        if actual["rank"] <= 3:  # the actual token is among the top 3, listed once
            assert sorted(e["rank"] for e in entry.values()) == [1, 2, 3]
        else:
            assert [e["rank"] for e in others] == [1, 2, 3]
        assert all(a["logprob"] >= b["logprob"] for a, b in zip(others, others[1:]))


def test_a_batch_answers_one_choice_per_prompt_in_index_order(http):
    body = score(http, [PROMPT, SHORT, PROMPT[:7]])
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert [len(c["prompt_logprobs"]) for c in body["choices"]] == [len(PROMPT), len(SHORT), 7]
    assert body["choices"][0]["prompt_logprobs"] == score(http, PROMPT)["choices"][0]["prompt_logprobs"]
    assert body["usage"]["prompt_tokens"] == len(PROMPT) + len(SHORT) + 7


def test_echo_with_logprobs_runs_over_the_prompt_then_the_generation(http):
    [choice] = score(http, SHORT, echo=True, logprobs=1, prompt_logprobs=None)["choices"]
    lp = choice["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(SHORT) + 1
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    assert lp["tokens"][: len(SHORT)] == [TOKENIZER.token_str(t) for t in SHORT]
    assert lp["text_offset"][0] == 0
    assert all(b - a == len(t) for a, b, t in zip(lp["text_offset"], lp["text_offset"][1:], lp["tokens"]))
    assert choice["text"].startswith(TOKENIZER.decode(SHORT))
    prompt_values = [entry[str(t)]["logprob"] for t, entry in zip(SHORT[1:], choice["prompt_logprobs"][1:])]
    assert lp["token_logprobs"][1 : len(SHORT)] == prompt_values  # echo also fills prompt_logprobs
    for token, top in zip(lp["tokens"][1:], lp["top_logprobs"][1:]):
        assert list(top)[0] == token and len(top) <= 2


def test_minus_infinity_is_clamped_to_minus_9999(vllm, http):
    vllm.control(fail_nth=[1], fail_mode="neg_inf", fail_endpoints=["score"])
    entries = score(http, SHORT)["choices"][0]["prompt_logprobs"]
    last = entries[-1][str(SHORT[-1])]
    assert last["logprob"] == -9999.0
    assert all(math.isfinite(e[str(t)]["logprob"]) and e[str(t)]["logprob"] > -9999 for t, e in zip(SHORT[1:-1], entries[1:-1]))
    echo = score(http, SHORT, echo=True, logprobs=0)["choices"][0]["logprobs"]  # call 2: not picked
    assert min(x for x in echo["token_logprobs"] if x is not None) > -9999


def test_a_non_zero_priority_is_vllms_400_without_priority_scheduling(http):
    response = http.post("/v1/completions", json={"prompt": SHORT, "max_tokens": 1, "priority": -1})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "Got priority -1 but Priority scheduling is not enabled.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    }
    assert http.post("/v1/completions", json={"prompt": SHORT, "max_tokens": 1, "priority": 0}).status_code == 200


def test_priority_is_accepted_with_scheduling_policy_priority(tmp_path):
    with run_refserver(tmp_path, "--api", "vllm", "--scheduling-policy", "priority") as server:
        response = httpx.post(f"{server.base_url}/completions", json={"prompt": SHORT, "max_tokens": 1, "priority": 4})
        assert response.status_code == 200, response.text


def test_tokenize_and_detokenize_are_at_the_root_with_vllms_bodies(http):
    text = "<|im_start|>user\nIs it raining in Łódź?<|im_end|>\n"
    body = http.post("/tokenize", json={"model": "memscore-ref", "prompt": text, "add_special_tokens": False}).json()
    assert body == {"count": len(body["tokens"]), "max_model_len": 262144, "tokens": TOKENIZER.encode(text), "token_strs": None}
    strs = http.post("/tokenize", json={"prompt": "Hi there", "return_token_strs": True}).json()["token_strs"]
    assert strs == [TOKENIZER.token_str(t) for t in TOKENIZER.encode("Hi there")]
    assert http.post("/detokenize", json={"model": "memscore-ref", "tokens": body["tokens"]}).json() == {"prompt": text}


def test_errors_have_vllms_body(http):
    response = http.post("/v1/completions", json={"prompt": [1, "x"], "max_tokens": 1})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "BadRequestError"
    assert "prompt[1]" in error["message"] and error["code"] == 400
    missing = http.post("/v1/completions", json={"model": "other", "prompt": SHORT})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFoundError"


def test_models_and_health_are_as_vllm_answers_them(http):
    [card] = http.get("/v1/models").json()["data"]
    assert card["id"] == "memscore-ref" and card["owned_by"] == "vllm" and card["max_model_len"] == 262144
    health = http.get("/health")
    assert health.status_code == 200 and health.content == b""


def test_scoring_calls_count_as_score_and_alternates_as_completions(vllm, http):
    vllm.control(fail_nth=[1], fail_endpoints=["score"])
    assert http.post("/v1/completions", json={"prompt": SHORT, "max_tokens": 2}).status_code == 200
    failed = http.post("/v1/completions", json={"prompt": SHORT, "max_tokens": 1, "prompt_logprobs": 0})
    assert failed.status_code == 500 and "injected failure (http500) on score call 1" in failed.json()["error"]["message"]
    assert vllm.stats()["calls"] == {"completions": 1, "score": 1}


def test_streamed_completions_carry_text_and_end_with_done(http):
    with http.stream("POST", "/v1/completions", json={"prompt": SHORT, "max_tokens": 3, "stream": True}) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all("token_ids" not in line for line in lines)  # vLLM sends them only with return_token_ids
