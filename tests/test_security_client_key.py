"""An inference server that echoes the request's headers in its error body
(security walkthrough, defect 2): the client's errors show "[API key]" for the
agent's key, so the key reaches neither the run's page, the worker's log nor
Check connection. A real HTTP server, answering every call with an error."""

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command

from scoring.client import InferenceClient, InferenceError, MemscoreClient, SglangClient, VllmClient
from scoring.models import Agent

KEY = "sk-echoed-0123456789abcdef"


class Echo(BaseHTTPRequestHandler):
    """Every call answered with the server's status and the request's
    Authorization header in the body ("json": {"error": ...}; "text": a long
    plain-text body that the client's error cuts short inside the key;
    "vllm": prompt log-probabilities that are the header)."""

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def _answer(self):
        said = f"unauthorized: you sent Authorization: {self.headers.get('Authorization')}"
        if self.server.shape == "vllm":
            # A 200 whose prompt entry quotes the header: not a log-probability.
            body = json.dumps({"choices": [{"index": 0, "prompt_logprobs": [None, {"9": said}]}]}).encode()
        elif self.server.shape == "json":
            body = json.dumps({"error": {"message": said}}).encode()
        else:
            # The key starts at character 290 of the body: the client keeps 300.
            body = ("x" * (290 - len("unauthorized: you sent Authorization: Bearer ")) + " " + said).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json" if self.server.shape == "json" else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def echo(echo_server):
    echo_server.status, echo_server.shape = 401, "json"
    return echo_server


def url(server):
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


CALLS = {
    "tokenize": lambda c: c.tokenize("hello"),
    "models": lambda c: c.models(),
    "complete": lambda c: c.complete([1, 2, 3]),
    "score": lambda c: c.score([1, 2, 3, 4], [(2, 4)]),
    "train": lambda c: c.train([], "idem-1"),
    "train_status": lambda c: c.train_status("job-1"),
}


@pytest.mark.parametrize("backend", [MemscoreClient, VllmClient, SglangClient])
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("status, shape", [(401, "json"), (500, "json"), (403, "text")])
def test_no_error_of_a_call_shows_the_key(echo, backend, call, status, shape):
    echo.status, echo.shape = status, shape
    with backend(url(echo), "m", api_key=KEY, timeout=5) as client, pytest.raises(InferenceError) as e:
        CALLS[call](client)

    assert KEY[:8] not in str(e.value)
    assert "Authorization: Bearer [API key]" in str(e.value)


def test_a_prompts_error_returned_in_its_place_is_masked_too(echo):
    # score_each gives an answer it cannot read as that prompt's error, quoting the server's entry.
    echo.status, echo.shape = 200, "vllm"
    with VllmClient(url(echo), "m", api_key=KEY, timeout=5) as client:
        [error] = client.score_each([([1, 2], [(1, 2)])])

    assert isinstance(error, InferenceError)
    assert KEY[:8] not in str(error) and "Bearer [API key]" in str(error)


def test_check_connection_does_not_show_the_key(echo, db):
    Agent.objects.create(name="echo", base_url=url(echo), model="m", api_key=KEY)
    out = io.StringIO()

    with pytest.raises(CommandError):
        call_command("check_agent", "echo", stdout=out)

    assert "[API key]" in out.getvalue() and KEY[:8] not in out.getvalue()


def test_a_client_without_a_key_masks_nothing(echo):
    with InferenceClient.for_agent(Agent(name="x", base_url=url(echo), model="m")) as client:
        with pytest.raises(InferenceError, match="Authorization: None"):
            client.models()


@pytest.mark.parametrize("text, masked", [
    (f"a {KEY} b {KEY}", "a [API key] b [API key]"),
    (f"cut: {KEY[:12]}", "cut: [API key]"),
    (f"cut: {KEY[:12]} (gave up)", "cut: [API key] (gave up)"),
    (f"short: {KEY[:7]}", f"short: {KEY[:7]}"),
    ("nothing here", "nothing here"),
])
def test_mask_key(text, masked):
    from scoring.client.errors import mask_key

    assert mask_key(text, KEY) == masked
