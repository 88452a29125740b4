"""Fault injection: every failure mode, latency, capacity, and how they are set."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from refserver.corpus import load_documents
from refserver.testing import run_refserver
from refserver.tokenizer import Tokenizer

PROMPT = Tokenizer.from_texts(load_documents()).encode("<|im_start|>assistant\nHi<|im_end|>\n")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """A server of this module's own: these tests change its faults and counters."""
    with run_refserver(tmp_path_factory.mktemp("faults")) as handle:
        yield handle


@pytest.fixture
def ref(faulty):
    faulty.control()
    yield faulty
    faulty.control()


@pytest.fixture
def http(ref):
    with httpx.Client(base_url=ref.base_url, timeout=10) as c:
        yield c


def score(http, **kwargs) -> httpx.Response:
    return http.post("/score", json={"prompt": PROMPT}, **kwargs)


def test_it_fails_the_nth_call_of_an_endpoint_with_http_500(ref, http):
    ref.control(fail_nth=[2, 4], fail_mode="http500")
    http.post("/tokenize", json={"prompt": "calls to other endpoints are counted apart"})
    statuses = [score(http).status_code for _ in range(5)]
    assert statuses == [200, 500, 200, 500, 200]
    body = http.post("/score", json={"prompt": PROMPT})
    assert body.status_code == 200
    failed = ref.control(fail_nth=[1])
    assert failed["faults"]["fail_nth"] == [1]
    assert score(http).json() == {"error": "injected failure (http500) on score call 1"}
    assert ref.stats()["calls"] == {"score": 1}


def test_it_fails_with_an_error_in_a_200_body(ref, http):
    ref.control(fail_nth=[1], fail_mode="error200")
    response = score(http)
    assert response.status_code == 200
    assert "error" in response.json() and "scores" not in response.json()
    assert "scores" in score(http).json()


def test_it_sends_an_error_event_to_a_streaming_client(ref, http):
    ref.control(fail_nth=[1], fail_mode="error200", fail_endpoints=["completions"])
    body = {"prompt": PROMPT, "max_tokens": 3, "stream": True}
    with http.stream("POST", "/completions", json=body) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line]
    assert events == ['data: {"error": "injected failure (error200) on completions call 1"}', "data: [DONE]"]


def test_it_hangs_past_the_client_timeout_then_serves_the_next_call(ref, http):
    ref.control(fail_nth=[1], fail_mode="hang", hang_seconds=5, capacity=1)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        score(http, timeout=0.3)
    # The client gave up, so the hung request must not hold the only slot.
    assert score(http, timeout=5).status_code == 200
    assert time.monotonic() - started < 3


def test_a_hang_ends_with_an_error_after_hang_seconds(ref, http):
    ref.control(fail_nth=[1], fail_mode="hang", hang_seconds=0.2)
    response = score(http, timeout=5)
    assert response.status_code == 504
    assert "hang" in response.json()["error"]


def test_it_drops_the_connection_without_a_response(ref, http):
    ref.control(fail_nth=[1], fail_mode="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        score(http)
    assert score(http).status_code == 200


def test_a_client_leaving_mid_stream_frees_its_slot(ref, http):
    body = {"prompt": PROMPT[:3], "max_tokens": 40, "temperature": 1.0, "seed": 1}
    assert len(http.post("/completions", json=body).json()["choices"][0]["token_ids"]) >= 10  # 0.5 s to stream
    ref.control(capacity=1, latency_per_token_us=50_000)
    with http.stream("POST", "/completions", json={**body, "stream": True}) as response:
        assert next(response.iter_lines()).startswith("data: ")
    deadline = time.monotonic() + 3
    while ref.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ref.stats()["in_flight"] == 0
    assert score(http, timeout=2).status_code == 200


def test_it_fails_at_a_rate_reproducibly(ref, http):
    ref.control(fail_rate=0.3, fail_mode="http500")
    first = [score(http).status_code for _ in range(60)]
    ref.control(fail_rate=0.3, fail_mode="http500")  # resets the call counters
    again = [score(http).status_code for _ in range(60)]
    assert first == again
    assert 8 <= first.count(500) <= 30
    assert set(first) == {200, 500}


def test_it_fails_only_the_endpoints_named(ref, http):
    ref.control(fail_nth=[1], fail_endpoints=["completions", "train", "tokenize"])
    assert score(http).status_code == 200
    assert http.post("/completions", json={"prompt": PROMPT, "max_tokens": 2}).status_code == 500
    assert http.post("/tokenize", json={"prompt": "x"}).status_code == 500
    sample = {"context_ids": PROMPT, "continuation_ids": PROMPT}
    assert http.post("/train", json={"training_data": {"samples": [sample]}}).status_code == 500
    assert ref.stats()["train_posts"] >= 1


def test_health_is_never_delayed_or_failed(ref, http):
    ref.control(fail_rate=1.0, fail_endpoints=["score", "completions", "tokenize", "models"], latency_ms=500)
    started = time.monotonic()
    response = http.get(f"{ref.root_url}/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert time.monotonic() - started < 0.3


def test_it_adds_a_fixed_latency_and_a_latency_per_token(ref, http):
    ref.control(latency_ms=150)
    started = time.monotonic()
    assert score(http).status_code == 200
    assert 0.15 <= time.monotonic() - started < 1.0
    ref.control(latency_ms=0, latency_per_token_us=1000)
    prompt = PROMPT * 50  # 350 tokens: 0.35 s
    started = time.monotonic()
    assert http.post("/score", json={"prompt": prompt}).status_code == 200
    assert 0.35 <= time.monotonic() - started < 1.5
    # The fixed latency covers the model's compute, not the latency per token: both are paid.
    ref.control(latency_ms=150, latency_per_token_us=1000)
    started = time.monotonic()
    assert http.post("/score", json={"prompt": prompt}).status_code == 200
    assert 0.5 <= time.monotonic() - started < 2.0


def test_it_serves_at_most_capacity_requests_at_once_and_queues_the_rest(ref):
    ref.control(capacity=2, latency_ms=150)
    started = time.monotonic()
    statuses = asyncio.run(_concurrent_scores(ref.base_url, 8))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 8
    stats = ref.stats()
    assert stats["max_served_at_once"] == 2
    assert stats["max_concurrent_seen"] == 8  # all arrived; six waited in the queue
    assert elapsed >= 4 * 0.15


def test_it_holds_64_simultaneous_connections(ref):
    ref.control(latency_ms=300)
    started = time.monotonic()
    statuses = asyncio.run(_concurrent_scores(ref.base_url, 64))
    assert statuses == [200] * 64
    assert ref.stats()["max_concurrent_seen"] >= 64
    assert time.monotonic() - started < 3.0  # served together, not one after another


async def _concurrent_scores(base_url: str, n: int) -> list[int]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        responses = await asyncio.gather(*(client.post("/score", json={"prompt": PROMPT}) for _ in range(n)))
    return [r.status_code for r in responses]


def test_control_rejects_unknown_or_malformed_settings(ref, http):
    for body in ({"fail_mode": "explode"}, {"latency": 5}, {"fail_nth": [0]}, {"fail_endpoints": ["nope"]}, {"fail_rate": 2}, {"capacity": -1}):
        response = http.post("/_control/faults", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]


def test_faults_can_be_set_by_flags_and_environment(tmp_path):
    env = {"REFSERVER_FAIL_NTH": "1,2", "REFSERVER_FAIL_MODE": "error200", "REFSERVER_FAIL_ENDPOINTS": "score"}
    with run_refserver(tmp_path / "state", "--fail-endpoints", "tokenize", env=env) as server:
        settings = httpx.get(f"{server.base_url}/_control/faults").json()["faults"]
        assert settings["fail_nth"] == [1, 2] and settings["fail_mode"] == "error200"
        assert settings["fail_endpoints"] == ["tokenize"]  # the flag wins over its variable
        assert "error" in httpx.post(f"{server.base_url}/tokenize", json={"prompt": "x"}).json()
        assert "scores" in httpx.post(f"{server.base_url}/score", json={"prompt": PROMPT}).json()


def test_control_endpoints_exist_only_when_enabled(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "refserver", "--port", "0", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, env=_child_env(),
    )
    try:
        url = proc.stdout.readline().split()[-1]
        assert httpx.get(f"{url}/health").status_code == 200
        assert httpx.get(f"{url}/v1/_control/stats").status_code == 404
        assert httpx.post(f"{url}/v1/_control/faults", json={"fail_rate": 1}).status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_bad_flag_or_variable_stops_start_up_with_a_message(tmp_path):
    for args, env in ((["--fail-mode", "explode"], {}), ([], {"REFSERVER_CAPACITY": "many"}), ([], {"REFSERVER_STATE_DIR": ""})):
        result = subprocess.run(
            [sys.executable, "-m", "refserver", "--port", "0", *(["--state-dir", str(tmp_path)] if "REFSERVER_STATE_DIR" not in env else []), *args],
            capture_output=True, text=True, env={**_child_env(), **env}, timeout=30,
        )
        assert result.returncode == 2
        assert "usage" in result.stderr and ("explode" in result.stderr or "REFSERVER_" in result.stderr or "state-dir" in result.stderr)


def _child_env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root}
