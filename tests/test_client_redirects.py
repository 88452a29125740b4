"""A 3xx from the agent's server (security walkthrough, LOW): Check connection
said "answered without a list of models: KeyError('data')". memscore does not
follow redirects (the API key would go along to wherever they point): every
call says so plainly, with where it points, and fails at once as a
permanent error (a score call is not retried)."""

import httpx
import pytest

from scoring.checks import check_agent
from scoring.client import InferenceClient, MemscoreClient, PermanentError, VllmClient, call_with_retries
from scoring.models import Agent

SSE = {"Content-Type": "text/event-stream"}


def answering(handler, client_class=InferenceClient, base_url="http://gpu-1:8000/v1"):
    sent = []

    def record(request):
        sent.append(request)
        return handler(request)

    client = client_class(base_url, "m", api_key="sk-1", timeout=5.0)
    client.http = httpx.Client(transport=httpx.MockTransport(record))
    return client, sent


def moved(status, location):
    return lambda request: httpx.Response(status, headers={"Location": location} if location else {})


def test_it_says_where_a_redirect_points_and_what_to_set():
    client, sent = answering(moved(307, "https://gpu-2.example:8443/v1/models"))

    with pytest.raises(PermanentError) as error:
        call_with_retries(client.models, backoff=0)

    message = str(error.value)
    assert "307 Temporary Redirect to https://gpu-2.example:8443/v1/models" in message
    assert "memscore does not follow redirects" in message
    assert "set the agent's base URL to https://gpu-2.example:8443" in message
    assert error.value.status == 307 and len(sent) == 1  # refused at once, never retried
    assert "KeyError" not in message


def test_a_relative_location_is_read_from_the_url_asked():
    client, _ = answering(moved(301, "/api/v1/models"))
    with pytest.raises(PermanentError, match=r"301 Moved Permanently to http://gpu-1:8000/api/v1/models.*"
                                             r"base URL to http://gpu-1:8000/api"):
        client.models()


def test_a_redirect_without_a_location_says_so():
    client, _ = answering(moved(302, None))
    with pytest.raises(PermanentError, match="302 Found without saying where.*does not follow redirects"):
        client.models()


@pytest.mark.parametrize("call", [
    lambda c: c.tokenize("hi"),
    lambda c: c.complete([1, 2]),
    lambda c: c.train([{"context_ids": [1], "continuation_ids": [2]}], "key-1"),
    lambda c: c.train_status("job-1"),
])
def test_every_call_refuses_a_redirect(call):
    client, sent = answering(moved(308, "http://elsewhere.example/v1/x"))
    with pytest.raises(PermanentError, match="308 Permanent Redirect.*does not follow redirects"):
        call(client)
    assert [str(r.url.host) for r in sent] == ["gpu-1"]


@pytest.mark.parametrize("client_class", [MemscoreClient, VllmClient])
def test_a_score_call_fails_at_once(client_class):
    client, sent = answering(moved(307, "http://elsewhere.example/v1/score"), client_class)
    with pytest.raises(PermanentError, match="does not follow redirects"):
        call_with_retries(lambda: client.score([1, 2, 3, 4], [(1, 3)]), backoff=0)
    assert len(sent) == 1


def test_check_connection_says_it_plainly(db, redirecting_server):
    root, seen = redirecting_server
    agent = Agent.objects.create(name="moved", base_url=root + "/v1", model="m", api_key="sk-1")

    first, *rest = check_agent(agent)

    assert first.ok is False
    assert "307 Temporary Redirect to http://127.0.0.1:9/v1/models" in first.message
    assert "set the agent's base URL to http://127.0.0.1:9" in first.message
    assert "KeyError" not in first.message
    assert seen == [("/v1/models", "Bearer sk-1")]
    # The server answered, with a redirect: the rest were skipped for that, and say so.
    assert {r.message for r in rest} == {"not checked: /v1/models failed"} and all(r.ok is None for r in rest)
