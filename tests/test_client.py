"""The inference client's streamed completions: events read with httpx-sse,
a total deadline, and errors sorted into the client's taxonomy."""

import json
import time

import httpx
import pytest

from scoring.client import InferenceClient, OutcomeUnknown, PermanentError, TransientError

SSE = {"Content-Type": "text/event-stream"}


def client_answering(handler, timeout=5.0):
    client = InferenceClient("http://inference.test/v1/", "m", timeout=timeout)
    client.http = httpx.Client(transport=httpx.MockTransport(handler))
    return client


def stream(*payloads):
    return b"".join(f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n".encode() for p in payloads)


def text(t):
    return {"choices": [{"text": t}]}


def test_it_joins_the_streamed_text():
    seen = {}

    def handler(request):
        seen["url"] = str(request.url)
        seen["body"] = json.loads(request.content)
        seen["accept"] = request.headers["accept"]
        body = b": keep-alive\n\n" + stream(text("Hel"), text("lo"), {"choices": [{}]}, "[DONE]")
        return httpx.Response(200, headers=SSE, content=body)

    with client_answering(handler) as client:
        assert client.complete([1, 2, 3], max_tokens=7) == "Hello"
    assert seen["url"] == "http://inference.test/v1/completions"
    assert seen["body"]["stream"] is True and seen["body"]["prompt"] == [1, 2, 3]
    assert seen["body"]["max_tokens"] == 7
    assert seen["accept"] == "text/event-stream"


def test_it_says_why_the_server_stopped_a_completion():
    # vLLM (entrypoints/openai/serving_completion.py) and SGLang send the
    # finish_reason in the last choice before [DONE]; the others carry null.
    def handler(request):
        last = {"choices": [{"index": 0, "text": "lo", "finish_reason": "length"}]}
        body = stream({"choices": [{"index": 0, "text": "Hel", "finish_reason": None}]}, last, "[DONE]")
        return httpx.Response(200, headers=SSE, content=body)

    with client_answering(handler) as client:
        completion = client.complete_detailed([1], max_tokens=2)
    assert (completion.text, completion.finish_reason, completion.cut_off) == ("Hello", "length", True)


def test_the_reference_server_says_a_completion_was_cut_off(ref):
    with InferenceClient(ref.base_url, "memscore-ref") as client:
        ids = client.tokenize("The capital of France is")
        assert client.complete_detailed(ids, max_tokens=1).cut_off


def test_it_reads_events_split_across_chunks():
    def chunks():
        whole = stream(text("a"), text("b"), "[DONE]")
        for i in range(0, len(whole), 5):
            yield whole[i:i + 5]

    with client_answering(lambda r: httpx.Response(200, headers=SSE, content=chunks())) as client:
        assert client.complete([1]) == "ab"


@pytest.mark.parametrize("body, message", [
    (stream({"error": "model overloaded"}, "[DONE]"), "/completions error: model overloaded"),
    (stream(text("a")), r"stream ended without \[DONE\]"),
    (stream("{not json"), "malformed event"),
    (stream({"choices": []}), "malformed event"),
])
def test_a_bad_stream_is_a_transient_error(body, message):
    with client_answering(lambda r: httpx.Response(200, headers=SSE, content=body)) as client:
        with pytest.raises(TransientError, match=message) as e:
            client.complete([1])
    assert not isinstance(e.value, OutcomeUnknown)


def test_an_answer_that_is_not_a_stream_is_a_transient_error():
    answer = httpx.Response(200, json={"choices": [{"text": "whole"}]})
    with client_answering(lambda r: answer) as client:
        with pytest.raises(TransientError, match="did not stream") as e:
            client.complete([1])
    assert not isinstance(e.value, OutcomeUnknown)


@pytest.mark.parametrize("status, error", [(500, TransientError), (429, TransientError),
                                           (400, PermanentError)])
def test_an_error_status_is_sorted(status, error):
    answer = httpx.Response(status, json={"error": "no thanks"})
    with client_answering(lambda r: answer) as client:
        with pytest.raises(error, match=f"/completions HTTP {status}: no thanks"):
            client.complete([1])


def test_a_stream_slower_than_the_deadline_stops():
    def slow():
        for _ in range(100):
            time.sleep(0.02)
            yield stream(text("x"))

    with client_answering(lambda r: httpx.Response(200, headers=SSE, content=slow()), timeout=0.1) as client:
        start = time.monotonic()
        with pytest.raises(TransientError, match="took longer than 0.1s"):
            client.complete([1])
    assert time.monotonic() - start < 1.0


def test_a_connection_refused_is_transient_and_a_drop_is_unknown():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    def drop(request):
        raise httpx.RemoteProtocolError("peer closed", request=request)

    with client_answering(refuse) as client:
        with pytest.raises(TransientError) as e:
            client.complete([1])
    assert not isinstance(e.value, OutcomeUnknown)
    with client_answering(drop) as client:
        with pytest.raises(OutcomeUnknown):
            client.complete([1])


def test_each_thread_has_its_own_connection_pool_and_close_closes_them_all():
    # httpx's pool looks at every connection it holds, under one lock, for
    # every request: the executor's threads each keep a pool of their own.
    from concurrent.futures import ThreadPoolExecutor

    client = InferenceClient("http://inference.test/v1/", "m", api_key="k")
    here = client.http
    with ThreadPoolExecutor(2) as pool:
        there = set(pool.map(lambda _: id(client.http), range(8)))
        opened = list(client._opened)

    assert client.http is here
    assert id(here) not in there and 1 <= len(there) <= 2
    assert all(c.headers["Authorization"] == "Bearer k" for c in opened)
    client.close()
    assert all(c.is_closed for c in opened)


def test_a_client_given_to_it_serves_every_thread():
    from concurrent.futures import ThreadPoolExecutor

    with client_answering(lambda request: httpx.Response(200, json={"data": [{"id": "m"}]})) as client:
        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(lambda _: client.models(), range(4))) == [["m"]] * 4
        given = client.http
    assert given.is_closed


@pytest.mark.parametrize("key", ["sk-line\nbreak", "sk-nbsp\u00a0é"])
def test_a_key_no_header_can_carry_is_refused_before_anything_is_sent_and_never_quoted(key):
    sent = []
    # As a row saved before the rule, or a key read from the environment.
    client = InferenceClient("http://gpu-1:8000/v1", "m", api_key=key)
    client.http = httpx.Client(transport=httpx.MockTransport(lambda request: sent.append(request)))
    with client, pytest.raises(PermanentError) as e:
        client.complete([1])
    assert "an HTTP header cannot carry" in str(e.value)
    assert key not in str(e.value) and "sk-" not in str(e.value)
    assert sent == []
