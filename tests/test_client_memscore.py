"""Contract: the memscore backend (docs/protocol.md's /score protocol, as the reference
server answers it), checked against the spans memscore computed; and picking a client."""

import pytest

from scoring.client import (
    InferenceClient,
    MemscoreClient,
    PermanentError,
    SglangClient,
    TransientError,
    Usage,
    VllmClient,
    split_base_url,
)
from tests.client_contract import AgentStub, answering, replaying

IDS = [151644, 77091, 198, 9707, 151645, 198, 151644, 77091, 198, 17, 151645]
SPANS = [(3, 5), (9, 11)]


def scores(*pairs):
    return {"scores": [{"total_logprob": t, "n_tokens": n} for t, n in pairs], "prompt_tokens": 11, "model": "m"}


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8765/v1", "http://127.0.0.1:8765"])
def test_it_posts_score_under_v1_without_a_priority(base_url):
    client, sent = replaying("memscore", answering(200, scores((-1.5, 2), (-2.0, 2))), base_url=base_url)
    assert isinstance(client, MemscoreClient)
    assert client.score(IDS, SPANS, first_needed=3) == [-1.5, -2.0]
    assert sent[0].url == "http://127.0.0.1:8765/v1/score"
    # first_needed travels as logprob_start: nothing before it is wanted.
    assert sent[0].body == {"model": "qwen", "prompt": IDS, "logprobs": 1, "logprob_start": 3}


def test_it_reads_the_usage_and_keeps_the_last_scores_of_a_server_that_ignores_logprob_start():
    answer = {**scores((-2.0, 2)), "logprob_start": 9,
              "usage": {"prompt_tokens": 11, "computed_tokens": 2, "cached_tokens": 0}}
    client, _ = replaying("memscore", answering(200, answer))
    assert client.score_detailed(IDS, SPANS[1:], first_needed=9) == ([-2.0], Usage(computed=2, cached=0))
    # An older server scores every response and says nothing of a start or of usage.
    client, _ = replaying("memscore", answering(200, scores((-1.0, 2), (-2.0, 2))))
    assert client.score_detailed(IDS, SPANS[1:], first_needed=9) == ([-2.0], Usage())


def test_the_servers_responses_must_be_memscores():
    client, _ = replaying("memscore", answering(200, scores((-1.0, 2), (-1.0, 2), (-1.0, 1))))
    with pytest.raises(PermanentError, match=r"3 scores for 2 responses \(memscore's spans: \[3, 5\), \[9, 11\)\)"):
        client.score(IDS, SPANS)
    client, _ = replaying("memscore", answering(200, scores((-1.0, 2), (-1.0, 3))))
    with pytest.raises(PermanentError, match=r"response 1 has 3 tokens where memscore's span \[9, 11\) has 2"):
        client.score(IDS, SPANS)
    # A server that does not say how long its responses are is checked by count only.
    client, _ = replaying("memscore", answering(200, {"scores": [{"total_logprob": -1.0}, {"total_logprob": -2.0}]}))
    assert client.score(IDS, SPANS) == [-1.0, -2.0]


@pytest.mark.parametrize("status, body, error, message", [
    (500, {"error": "injected failure"}, TransientError, "/v1/score HTTP 500: injected failure"),
    (200, {"error": "overloaded"}, TransientError, "/v1/score error: overloaded"),
    (200, {"scores": [{"total": 1}]}, TransientError, "without valid scores"),
    (400, {"error": "prompt too long"}, PermanentError, "/v1/score HTTP 400: prompt too long"),
])
def test_errors_are_sorted(status, body, error, message):
    client, _ = replaying("memscore", answering(status, body))
    with pytest.raises(error, match=message):
        client.score(IDS, SPANS)


def test_priority_when_set_and_alternates_one_lower():
    client, sent = replaying("memscore", answering(200, scores((-1.0, 2), (-1.0, 2))), priority=5)
    client.score(IDS, SPANS)
    assert sent[0].body["priority"] == 5
    assert client.priority_field(urgent=True) == {"priority": 4}


def test_tokenize_and_train_are_under_v1():
    client, sent = replaying("memscore", answering(200, {"tokens": [1, 2], "count": 2, "job_id": "j1"}),
                             base_url="http://127.0.0.1:8765")
    assert client.tokenize("hi") == [1, 2]
    assert client.train([], idempotency_key="k") == "j1"
    assert [s.url for s in sent] == ["http://127.0.0.1:8765/v1/tokenize", "http://127.0.0.1:8765/v1/train"]


@pytest.mark.parametrize("backend, client_class", [
    ("memscore", MemscoreClient), ("vllm", VllmClient), ("sglang", SglangClient),
])
def test_for_agent_picks_the_backends_client(backend, client_class):
    with InferenceClient.for_agent(AgentStub(backend=backend, priority=7)) as client:
        assert type(client) is client_class and client.priority == 7


def test_an_unknown_backend_is_a_clear_error():
    with pytest.raises(PermanentError, match="agent helper: unknown server API 'tgi'"):
        InferenceClient.for_agent(AgentStub(backend="tgi"))


@pytest.mark.parametrize("base_url, root", [
    ("http://h:8000", "http://h:8000"), ("http://h:8000/", "http://h:8000"), ("http://h:8000/v1", "http://h:8000"),
    ("http://h:8000/v1/", "http://h:8000"), ("http://h/api/v1", "http://h/api"),
])
def test_the_base_url_may_be_the_root_or_its_v1(base_url, root):
    assert split_base_url(base_url) == (root, root + "/v1")
