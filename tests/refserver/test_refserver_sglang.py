"""The SGLang surface (--api sglang): /generate and the rest as SGLang's source shapes them."""

from __future__ import annotations

import pytest
from surface_support import PROMPT, SHORT, TOKENIZER, surface_client

from refserver.testing import run_refserver


@pytest.fixture(scope="module")
def sglang(tmp_path_factory):
    with run_refserver(tmp_path_factory.mktemp("sglang"), "--api", "sglang") as handle:
        yield handle


@pytest.fixture
def http(sglang):
    with surface_client(sglang) as c:
        yield c


def generate(http, input_ids, **extra):
    body = {"input_ids": input_ids, "sampling_params": {"max_new_tokens": 1, "temperature": 0}, "return_logprob": True}
    response = http.post("/generate", json={**body, **extra})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("start", [0, 1, 9, len(PROMPT) - 1])
def test_input_token_logprobs_start_at_logprob_start_len_with_a_null_first(http, start):
    out = generate(http, PROMPT, logprob_start_len=start)
    entries = out["meta_info"]["input_token_logprobs"]
    assert len(entries) == len(PROMPT) - start
    assert entries[0] == [None, PROMPT[start], None]
    assert [e[1] for e in entries] == PROMPT[start:]
    assert all(isinstance(e[0], float) and e[0] < 0 and e[2] is None for e in entries[1:])


def test_the_same_position_has_the_same_logprob_whatever_the_start(http):
    whole = generate(http, PROMPT, logprob_start_len=0)["meta_info"]["input_token_logprobs"]
    tail = generate(http, PROMPT, logprob_start_len=20)["meta_info"]["input_token_logprobs"]
    assert tail[1:] == whole[21:]


def test_meta_info_and_output_are_shaped_as_sglangs(http):
    out = generate(http, SHORT, logprob_start_len=0, return_text_in_logprobs=True)
    assert set(out) == {"text", "output_ids", "meta_info"}
    meta = out["meta_info"]
    assert meta["prompt_tokens"] == len(SHORT) and meta["completion_tokens"] == len(out["output_ids"]) == 1
    assert meta["finish_reason"] == {"type": "length", "length": 1}
    assert {"id", "cached_tokens", "e2e_latency", "output_token_logprobs"} <= set(meta)
    assert [e[2] for e in meta["input_token_logprobs"]] == [TOKENIZER.token_str(t) for t in SHORT]
    [(logprob, token, _)] = meta["output_token_logprobs"]
    assert token == out["output_ids"][0] and logprob < 0


def test_a_batch_answers_a_list_with_a_start_per_prompt(http):
    outs = generate(http, [PROMPT, SHORT], logprob_start_len=[5, 0])
    assert isinstance(outs, list) and len(outs) == 2
    assert [len(o["meta_info"]["input_token_logprobs"]) for o in outs] == [len(PROMPT) - 5, len(SHORT)]


def test_the_default_start_gives_only_the_last_prompt_token(http):
    out = generate(http, SHORT)
    assert out["meta_info"]["input_token_logprobs"] == [[None, SHORT[-1], None]]


def test_top_logprobs_num_adds_the_top_tokens_per_position(http):
    meta = generate(http, SHORT, logprob_start_len=2, top_logprobs_num=2)["meta_info"]
    assert meta["input_top_logprobs"][0] is None
    assert all(len(top) == 2 and top[0][0] >= top[1][0] for top in meta["input_top_logprobs"][1:])
    assert len(meta["output_top_logprobs"]) == 1


def test_minus_infinity_comes_back_as_null(sglang, http):
    sglang.control(fail_nth=[1], fail_mode="neg_inf", fail_endpoints=["score"])
    entries = generate(http, SHORT, logprob_start_len=0)["meta_info"]["input_token_logprobs"]
    assert entries[-1][0] is None and all(e[0] is not None for e in entries[1:-1])


def test_errors_have_sglangs_bodies(http):
    native = http.post("/generate", json={"sampling_params": {"max_new_tokens": 1}})
    assert native.status_code == 400 and set(native.json()) == {"error"} and set(native.json()["error"]) == {"message"}
    bad_start = http.post("/generate", json={"input_ids": SHORT, "return_logprob": True, "logprob_start_len": len(SHORT)})
    assert bad_start.status_code == 400 and "logprob_start_len" in bad_start.json()["error"]["message"]
    openai = http.post("/v1/completions", json={"prompt": SHORT, "max_tokens": -1})
    assert openai.status_code == 400
    body = openai.json()
    assert body["object"] == "error" and body["code"] == 400 and "max_tokens" in body["message"]


def test_tokenize_detokenize_model_info_and_models(http):
    assert http.post("/tokenize", json={"prompt": "Hi there"}).json()["tokens"] == TOKENIZER.encode("Hi there")
    batch = http.post("/tokenize", json={"prompt": ["Hi", "there"]}).json()
    assert batch["tokens"] == [TOKENIZER.encode("Hi"), TOKENIZER.encode("there")]
    assert batch["count"] == [len(ids) for ids in batch["tokens"]]
    assert http.post("/detokenize", json={"tokens": TOKENIZER.encode("Hi there")}).json() == {"text": "Hi there"}
    assert http.post("/detokenize", json={"tokens": SHORT, "skip_special_tokens": False}).json()["text"] == TOKENIZER.decode(SHORT)
    info = http.get("/get_model_info").json()
    assert info["model_path"] == "memscore-ref" and info["is_generation"] is True
    [card] = http.get("/v1/models").json()["data"]
    assert card["id"] == "memscore-ref" and card["owned_by"] == "sglang"
    assert http.get("/health").status_code == 200


def test_generate_with_logprobs_is_a_score_call_and_without_a_completion(sglang, http):
    sglang.control(fail_nth=[1], fail_endpoints=["score"])
    plain = http.post("/generate", json={"input_ids": SHORT, "sampling_params": {"max_new_tokens": 2}})
    assert plain.status_code == 200
    failed = http.post("/generate", json={"input_ids": SHORT, "return_logprob": True, "logprob_start_len": 0})
    assert failed.status_code == 500 and failed.json() == {"error": {"message": "injected failure (http500) on score call 1"}}
    alternate = http.post("/v1/completions", json={"prompt": SHORT, "max_tokens": 2, "temperature": 0})
    assert alternate.status_code == 200 and isinstance(alternate.json()["choices"][0]["text"], str)
    assert sglang.stats()["calls"] == {"completions": 2, "score": 1}
