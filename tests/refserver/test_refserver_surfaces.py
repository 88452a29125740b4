"""--api picks the surfaces: each hides the others' endpoints, and all of them
serve the same model, so their numbers agree with /v1/score's."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from surface_support import PROMPT, SHORT, response_spans

from refserver.testing import run_refserver

MEMSCORE_ONLY = [("POST", "/v1/score"), ("POST", "/v1/tokenize"), ("POST", "/v1/train"), ("GET", "/v1/train/x")]
SGLANG_ONLY = [("POST", "/generate"), ("GET", "/get_model_info")]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    handles = {}
    with (
        run_refserver(tmp_path_factory.mktemp("memscore"), "--api", "memscore") as handles["memscore"],
        run_refserver(tmp_path_factory.mktemp("vllm"), "--api", "vllm") as handles["vllm"],
        run_refserver(tmp_path_factory.mktemp("sglang"), "--api", "sglang") as handles["sglang"],
        run_refserver(tmp_path_factory.mktemp("all")) as handles["all"],
    ):
        yield handles


def status(server, method, path):
    return httpx.request(method, f"{server.root_url}{path}", json={}, timeout=30).status_code


@pytest.mark.parametrize(
    "api, absent",
    [
        ("vllm", MEMSCORE_ONLY + SGLANG_ONLY + [("POST", "/v1/detokenize")]),
        ("sglang", MEMSCORE_ONLY + [("POST", "/v1/detokenize")]),
        ("memscore", SGLANG_ONLY),
    ],
)
def test_each_surface_hides_the_endpoints_of_the_others(servers, api, absent):
    for method, path in absent:
        assert status(servers[api], method, path) == 404, (api, method, path)
    assert all(status(servers[api], "GET", p) == 200 for p in ("/health", "/v1/models"))


def test_all_serves_every_surface(servers):
    for method, path in MEMSCORE_ONLY[:2] + SGLANG_ONLY + [("POST", "/tokenize"), ("POST", "/v1/completions")]:
        assert status(servers["all"], method, path) != 404, path


def totals_from_score(server, prompt):
    body = httpx.post(f"{server.base_url}/score", json={"prompt": prompt}, timeout=30).json()
    return [s["total_logprob"] for s in body["scores"]]


def totals_from_vllm(server, prompts):
    body = {"prompt": prompts, "max_tokens": 1, "temperature": 0, "prompt_logprobs": 0}
    choices = httpx.post(f"{server.base_url}/completions", json=body, timeout=60).json()["choices"]
    out = []
    for prompt, choice in zip(prompts, sorted(choices, key=lambda c: c["index"])):
        values = [None] + [e[str(t)]["logprob"] for t, e in zip(prompt[1:], choice["prompt_logprobs"][1:])]
        out.append([sum(values[a:b]) for a, b in response_spans(prompt)])
    return out


def totals_from_sglang(server, prompt):
    spans = response_spans(prompt)
    start = spans[0][0] - 1  # just before the first position needed
    body = {
        "input_ids": prompt,
        "sampling_params": {"max_new_tokens": 1, "temperature": 0},
        "return_logprob": True,
        "logprob_start_len": start,
    }
    entries = httpx.post(f"{server.root_url}/generate", json=body, timeout=30).json()["meta_info"]["input_token_logprobs"]
    values = [e[0] for e in entries]
    return [sum(values[a - start : b - start]) for a, b in spans]


def test_every_surface_gives_the_same_totals_as_score(servers):
    expected = {tuple(p): totals_from_score(servers["memscore"], p) for p in (PROMPT, SHORT)}
    assert all(len(t) >= 1 for t in expected.values())
    for prompt, from_vllm in zip((PROMPT, SHORT), totals_from_vllm(servers["vllm"], [PROMPT, SHORT])):
        assert from_vllm == pytest.approx(expected[tuple(prompt)], abs=1e-6)
        assert totals_from_sglang(servers["sglang"], prompt) == pytest.approx(expected[tuple(prompt)], abs=1e-6)
        assert totals_from_score(servers["all"], prompt) == pytest.approx(expected[tuple(prompt)], abs=1e-6)
    from_all = totals_from_vllm(servers["all"], [PROMPT])[0]
    assert from_all == pytest.approx(expected[tuple(PROMPT)], abs=1e-6)


@pytest.mark.parametrize("flag, value", [("--api", "openai"), ("--scheduling-policy", "lifo")])
def test_a_bad_api_or_policy_stops_start_up(tmp_path, flag, value):
    result = subprocess.run(
        [sys.executable, "-m", "refserver", "--state-dir", str(tmp_path), flag, value],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and flag in result.stderr
