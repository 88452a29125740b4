"""Bad input gets a 4xx with {"error": "<what is wrong>"}, and the server keeps serving."""

from __future__ import annotations

import httpx
import pytest

from refserver.corpus import load_documents
from refserver.testing import run_refserver
from refserver.tokenizer import Tokenizer

API_KEY = "s3cret-key"
MAX_PROMPT = 50
GOOD = Tokenizer.from_texts(load_documents()).encode("<|im_start|>assistant\nHi<|im_end|>\n")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    state = tmp_path_factory.mktemp("bad-input")
    with run_refserver(state, "--api-key", API_KEY, "--max-prompt-tokens", str(MAX_PROMPT)) as handle:
        yield handle


@pytest.fixture(scope="module")
def http(guarded):
    with httpx.Client(base_url=guarded.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def vocab_size(http, guarded):
    return http.get(f"{guarded.root_url}/health").json()["vocab_size"]


@pytest.fixture(autouse=True)
def still_serving(http):
    yield
    assert http.post("/score", json={"prompt": GOOD}).status_code == 200


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    for word in words:
        assert word in body["error"], (word, body["error"])


@pytest.mark.parametrize("path", ["/score", "/completions", "/tokenize", "/detokenize", "/train"])
@pytest.mark.parametrize(
    "content, words",
    [
        (b'{"prompt": [1, 2', ["not valid JSON"]),
        (b"\xff\xfe not utf-8", ["not valid JSON"]),
        (b"", ["empty"]),
        (b"[1, 2, 3]", ["JSON object"]),
        (b"[" * 100_000, ["not valid JSON"]),
    ],
)
def test_malformed_bodies_are_400(http, path, content, words):
    assert_error(http.post(path, content=content), 400, *words)


@pytest.mark.parametrize(
    "path, body, words",
    [
        ("/score", {"model": "memscore-ref"}, ["prompt"]),
        ("/completions", {"max_tokens": 3}, ["prompt"]),
        ("/tokenize", {}, ["prompt"]),
        ("/detokenize", {}, ["tokens"]),
        ("/train", {}, ["training_data"]),
        ("/train", {"training_data": {}}, ["samples"]),
        ("/train", {"training_data": {"samples": []}}, ["samples"]),
        ("/train", {"training_data": {"samples": [{"context_ids": GOOD}]}}, ["samples[0].continuation_ids"]),
        ("/train", {"training_data": {"samples": [{"continuation_ids": GOOD}]}}, ["samples[0].context_ids"]),
        ("/train", {"training_data": {"samples": ["not a sample"]}}, ["samples[0]"]),
    ],
)
def test_missing_fields_are_400(http, path, body, words):
    assert_error(http.post(path, json=body), 400, *words)


@pytest.mark.parametrize("bad", ["7", 7.0, True, None, [7], {"id": 7}])
def test_ids_that_are_not_integers_are_400(http, bad):
    ids = GOOD[:3] + [bad] + GOOD[3:]
    assert_error(http.post("/score", json={"prompt": ids}), 400, "prompt[3]", "integer")
    assert_error(http.post("/completions", json={"prompt": ids}), 400, "prompt[3]")
    assert_error(http.post("/detokenize", json={"tokens": ids}), 400, "tokens[3]")
    sample = {"context_ids": ids, "continuation_ids": GOOD}
    assert_error(http.post("/train", json={"training_data": {"samples": [sample]}}), 400, "samples[0].context_ids[3]")


@pytest.mark.parametrize("bad", [-1, "vocab_size", 2**40, 2**70, -(2**70)])
def test_ids_outside_the_vocabulary_are_400(http, vocab_size, bad):
    bad = vocab_size if bad == "vocab_size" else bad
    ids = GOOD + [bad]
    where = f"[{len(GOOD)}]"
    assert_error(http.post("/score", json={"prompt": ids}), 400, "prompt" + where, "outside the vocabulary")
    assert_error(http.post("/completions", json={"prompt": ids}), 400, "outside the vocabulary")
    assert_error(http.post("/detokenize", json={"tokens": ids}), 400, "outside the vocabulary")
    sample = {"context_ids": GOOD, "continuation_ids": ids}
    assert_error(http.post("/train", json={"training_data": {"samples": [sample]}}), 400, "continuation_ids" + where)


def test_an_empty_prompt_is_400(http):
    assert_error(http.post("/score", json={"prompt": []}), 400, "prompt is empty")
    assert_error(http.post("/completions", json={"prompt": []}), 400, "prompt is empty")
    assert_error(http.post("/completions", json={"prompt": ""}), 400, "prompt is empty")
    sample = {"context_ids": GOOD, "continuation_ids": []}
    assert_error(http.post("/train", json={"training_data": {"samples": [sample]}}), 400, "continuation_ids is empty")


def test_a_prompt_over_the_maximum_length_is_400(http):
    at_limit = (GOOD * 10)[:MAX_PROMPT]
    assert http.post("/score", json={"prompt": at_limit}).status_code == 200
    assert_error(http.post("/score", json={"prompt": at_limit + [12]}), 400, f"{MAX_PROMPT + 1} tokens", f"maximum of {MAX_PROMPT}")
    assert_error(http.post("/completions", json={"prompt": at_limit + [12]}), 400, f"maximum of {MAX_PROMPT}")
    assert_error(http.post("/completions", json={"prompt": at_limit[:-5], "max_tokens": 10}), 400, "max_tokens", "maximum model length")


@pytest.mark.parametrize(
    "field, value",
    [("max_tokens", 0), ("max_tokens", "5"), ("temperature", -1), ("temperature", "hot"), ("top_p", 0), ("top_p", 1.5),
     ("top_k", -2), ("top_k", 1.5), ("seed", "x"), ("n", 2), ("stop", 5), ("stop", [""]), ("stream", "yes"), ("logprobs", -1)],
)
def test_bad_sampling_parameters_are_400(http, field, value):
    assert_error(http.post("/completions", json={"prompt": GOOD, field: value}), 400, field)


def test_a_wrong_or_missing_bearer_token_is_401(guarded):
    with httpx.Client() as anonymous:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}, {"Authorization": "Basic " + API_KEY}):
            for method, url, body in (
                ("POST", f"{guarded.base_url}/score", {"prompt": GOOD}),
                ("POST", f"{guarded.root_url}/tokenize", {"prompt": "x"}),
                ("GET", f"{guarded.base_url}/models", None),
                ("GET", f"{guarded.base_url}/train/job-x", None),
            ):
                response = anonymous.request(method, url, json=body, headers=headers)
                assert_error(response, 401, "bearer token")
        assert anonymous.get(f"{guarded.root_url}/health").status_code == 200  # for load balancers and start-up checks


def test_an_unknown_model_is_404(http):
    assert_error(http.post("/score", json={"model": "gpt-9", "prompt": GOOD}), 404, "gpt-9", "memscore-ref")


def test_unknown_paths_and_methods_get_json_errors(http, guarded):
    assert_error(http.get("/nowhere"), 404, "/v1/nowhere")
    assert_error(http.get("/score"), 405, "GET")


def test_a_bad_idempotency_key_is_400(http):
    sample = {"context_ids": GOOD, "continuation_ids": GOOD}
    response = http.post("/train", json={"training_data": {"samples": [sample]}}, headers={"Idempotency-Key": "k" * 300})
    assert_error(response, 400, "Idempotency-Key")
