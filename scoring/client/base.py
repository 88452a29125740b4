"""What every backend's client shares: the HTTP plumbing, the base URL's two
forms, priorities, streamed completions (alternates), tokenize, models and
the /train protocol. Each backend (memscore.py, vllm.py, sglang.py) adds how
it scores; `InferenceClient.for_agent(agent)` picks the agent's.
"""

import functools
import inspect
import json
import math
import threading
import time
from dataclasses import dataclass

import httpcore  # noqa: F401 (httpx imports it with its first client: here, before any run's clock)
import httpx
import numpy as np
import orjson
from httpx_sse import SSEError, connect_sse

from scoring.models.agents import api_key_problem, base_url_problem

from .errors import (
    InferenceError,
    OutcomeUnknown,
    PermanentError,
    TransientError,
    classify_transport_error,
    error_message,
    mask_key,
    redirect_error,
    status_error,
    unknown_model,
)

# JSON this long is read with orjson where it reads the same (json_loads).
ORJSON_FROM = 4096
# backend name -> client class, filled in as the backends' modules are imported.
BACKENDS = {}


def split_base_url(base_url):
    """(root, v1) of an agent's base URL, given as the server root or its /v1 prefix."""
    base = base_url.rstrip("/")
    root = base.removesuffix("/v1") if base.endswith("/v1") else base
    return root, root + "/v1"


@dataclass(frozen=True)
class Completion:
    """A streamed completion: its text, and why the server stopped it
    ("length": at max_tokens, the model had not finished; "stop"; None: not said)."""

    text: str
    finish_reason: str = None

    @property
    def cut_off(self):
        return self.finish_reason == "length"


@dataclass(frozen=True)
class Usage:
    """What a server says of one score call's tokens (None: it does not say).

    computed: positions it ran the model over; cached: positions served from
    its prefix cache."""

    computed: int = None
    cached: int = None


class InferenceClient:
    """One agent's inference server. Subclasses set `backend` and score_detailed."""

    backend = None
    # Whether it keeps a prefix cache that score calls read: then a matrix's
    # baseline goes first and its variants after it, to find it cached.
    prefix_cache = False
    # Prompts sent in one scoring request, up to this many tokens in all
    # (0: one prompt a request). A backend that takes several prompts a
    # request sets its default; the agent's score_batch_tokens replaces it.
    batch_tokens = 0
    server_name = "inference"
    # Where the server serves /tokenize: "v1" (memscore) or "root" (vLLM, SGLang).
    tokenize_at = "v1"
    # The step that makes a request more urgent: vLLM runs lower priorities first.
    more_urgent = -1
    priority_flag = "priority scheduling"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("backend"):
            BACKENDS[cls.backend] = cls
        _mask_key_in_errors(cls)

    def __init__(self, base_url, model, api_key="", timeout=300.0, connect_timeout=5.0, *, priority=None,
                 batch_tokens=None):
        self.base_url = base_url.rstrip("/")
        if batch_tokens is not None and type(self).batch_tokens:
            # Only a backend that takes several prompts a request batches them.
            self.batch_tokens = batch_tokens
        self.root, self.v1 = split_base_url(base_url)
        # The rules an agent's base URL is saved under, checked again here for
        # rows saved before them: every call is refused (url()), none is sent.
        self.refused = base_url_problem(self.base_url)
        # Likewise a key no header can carry (saved before the rule, or read
        # from the environment): refused before anything is sent.
        self.key_refused = api_key_problem(api_key) if api_key else None
        self.model = model
        self.timeout = timeout
        # None: no "priority" field is ever sent (a stock vLLM refuses one).
        self.priority = priority
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key and not self.key_refused else {}
        self._api_key = api_key
        self._connect_timeout = connect_timeout
        self._own = threading.local()
        self._opened, self._opened_lock = [], threading.Lock()
        self._given = None

    @property
    def http(self):
        """The calling thread's own httpx client, opened on first use.

        One pool per thread: httpx's pool, for every request it starts or
        ends, looks at every connection it holds (a poll() each) under a lock
        all its threads share; with the executor's threads on one pool that
        was ~8% of memscore's CPU in a full matrix, and its lock a queue."""
        if self._given is not None:
            return self._given
        client = getattr(self._own, "client", None)
        if client is None:
            client = self._own.client = httpx.Client(
                headers=self._headers,
                # Plain HTTP makes no TLS context's CA bundle worth loading.
                verify=False if self.root.lower().startswith("http:") else _ssl_context(),
                timeout=httpx.Timeout(self.timeout, connect=self._connect_timeout),
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            )
            with self._opened_lock:
                self._opened.append(client)
        return client

    @http.setter
    def http(self, client):
        """Every thread's client from now on (tests give one over a mock transport)."""
        self._given = client

    @classmethod
    def for_agent(cls, agent):
        try:
            client_class = BACKENDS[agent.backend]
        except KeyError:
            raise PermanentError(f"agent {agent.name}: unknown server API {agent.backend!r}") from None
        return client_class(agent.base_url, agent.model, agent.get_api_key(), agent.request_timeout,
                            priority=agent.priority, batch_tokens=agent.score_batch_tokens)

    def close(self):
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for client in opened:
            client.close()
        if self._given is not None:
            self._given.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- what each backend answers ------------------------------------------

    def score(self, prompt_ids, spans, *, first_needed=None):
        """One total log-probability per span [start, end) of positions in prompt_ids.

        first_needed: no position before it is wanted (a causal window starts
        there); a backend whose server can start later tells it so (asked_tokens)."""
        return self.score_detailed(prompt_ids, spans, first_needed=first_needed)[0]

    def score_detailed(self, prompt_ids, spans, *, first_needed=None):
        """(score()'s totals, Usage): what the server says it computed, where it says."""
        raise NotImplementedError(f"{type(self).__name__} does not score")

    def asked_tokens(self, n_prompt, spans, first_needed=None):
        """Prompt positions score() asks the server to compute: every one here
        (vLLM computes the whole prompt of a prompt-logprobs request); a
        backend that tells its server where to start counts from there."""
        return n_prompt if spans else 0

    def tokenize(self, text):
        label = "/tokenize" if self.tokenize_at == "root" else "/v1/tokenize"
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        try:
            data = self._post_json(label, body)
        except PermanentError as e:
            if e.status != 404:
                raise
            if unknown_model(e):  # the path is there: the model name is wrong
                raise PermanentError(
                    f"{e} (the server has POST {label}: check the agent's model name ({self.model!r}))",
                    status=404,
                ) from None
            raise PermanentError(
                f"{e} (a {self.server_name} server serves POST {label}; check the agent's "
                f"server API ({self.backend}) and base URL ({self.base_url}))", status=404
            ) from None
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise TransientError(f"{label} answered without a list of integer tokens")
        return tokens

    def models(self):
        """The model names the server serves (GET /v1/models)."""
        data = self._request_json("GET", "/v1/models")
        try:
            return [str(card["id"]) for card in data["data"]]
        except (KeyError, TypeError) as e:
            raise TransientError(f"/v1/models answered without a list of models: {e!r}") from None

    def complete(self, prompt_ids, **sampling):
        """Stream a completion and return its text (complete_detailed's)."""
        return self.complete_detailed(prompt_ids, **sampling).text

    def complete_detailed(self, prompt_ids, *, temperature=0.6, top_p=0.95, top_k=20, max_tokens=256):
        """Stream a completion (the alternates), one step more urgent than score
        calls when the agent sets a priority; its Completion."""
        body = {
            "model": self.model,
            "prompt": prompt_ids,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "max_tokens": max_tokens,
            "stream": True,
            **self.priority_field(urgent=True),
        }
        return Completion(*self._stream_text("/v1/completions", body))

    def train(self, samples, idempotency_key):
        """POST /v1/train (memscore's protocol); returns the server's job id."""
        body = {"training_data": {"samples": samples}}
        data = self._post_json("/v1/train", body, headers={"Idempotency-Key": idempotency_key})
        job_id = data.get("job_id")
        if not job_id:
            raise OutcomeUnknown("/v1/train answered without a job_id")
        return str(job_id)

    def refuses_token(self, token_id):
        """Whether the server's tokenizer refuses to decode `token_id` (a 400 or
        422 from its /detokenize): how an import finds ids outside a stock
        server's vocabulary, whose size it does not report. None when the
        server cannot say (no /detokenize, or no answer)."""
        label = "/detokenize" if self.tokenize_at == "root" else "/v1/detokenize"
        try:
            self._post_json(label, {"model": self.model, "tokens": [int(token_id)]})
        except PermanentError as e:
            return True if e.status in (400, 422) else None
        except (TransientError, OutcomeUnknown):
            return None
        return False

    def train_status(self, job_id):
        # A failed job's status carries its "error": that is the answer, not a failed call.
        return self._request_json("GET", f"/v1/train/{job_id}", body_error_fails=False)

    # --- shared by the backends ---------------------------------------------

    def priority_field(self, *, urgent=False):
        """{"priority": n} when the agent sets one, else {} (nothing is sent)."""
        if self.priority is None:
            return {}
        return {"priority": self.priority + (self.more_urgent if urgent else 0)}

    def url(self, label):
        """The full URL of a path given from the server root ("/tokenize", "/v1/score");
        PermanentError for a base URL memscore does not call."""
        if self.refused:
            raise PermanentError(f"{label} not sent: the agent's base URL is not one memscore calls. "
                                 f"{self.refused} Then save the agent's settings.")
        if self.key_refused:
            raise PermanentError(f"{label} not sent: {self.key_refused}")
        return self.root + label

    def _post_json(self, label, body, headers=None):
        return self._request_json("POST", label, body, headers)

    def _request_json(self, method, label, body=None, headers=None, body_error_fails=True):
        """The JSON answer of one call, bounded by a total deadline; errors sorted."""
        deadline = time.monotonic() + self.timeout
        try:
            with self.http.stream(method, self.url(label), **json_content(body, headers)) as r:
                chunks = []
                # httpx's read timeout restarts with every chunk; this bounds the whole call.
                for chunk in r.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise OutcomeUnknown(f"{label} took longer than {self.timeout:g}s")
                content = b"".join(chunks)
                status = r.status_code
                if 300 <= status < 400:
                    raise redirect_error(label, status, r.headers.get("location"), r.url)
        except httpx.HTTPError as e:
            raise classify_transport_error(label, e) from None
        try:
            data = json_loads(content) if content else {}
        except ValueError:
            data = None
        if status >= 400:
            raise self._status_error(label, status, error_message(data, content), body)
        if not isinstance(data, dict):
            raise TransientError(f"{label} HTTP {status}: the body is not a JSON object")
        if body_error_fails and "error" in data:
            raise TransientError(f"{label} error: {error_message(data)}")
        return data

    def _status_error(self, label, status, message, body):
        if status == 400 and isinstance(body, dict) and "priority" in body and "priority" in message.lower():
            message += (
                f" (the agent's scheduling priority is set to {self.priority}: clear it in the "
                f"agent's settings, or start the server with {self.priority_flag})"
            )
        return status_error(label, status, message)

    def _stream_text(self, label, body):
        """(the streamed text, the finish_reason its last choice gave or None)."""
        parts, finish_reason = [], None
        deadline = time.monotonic() + self.timeout
        try:
            with connect_sse(self.http, "POST", self.url(label), **json_content(body)) as events:
                status = events.response.status_code
                if 300 <= status < 400:
                    raise redirect_error(label, status, events.response.headers.get("location"), events.response.url)
                if status >= 400:
                    content = events.response.read()
                    try:
                        data = json_loads(content)
                    except ValueError:
                        data = None
                    raise self._status_error(label, status, error_message(data, content), body)
                for event in events.iter_sse():
                    # The read timeout restarts with every chunk; this bounds the whole stream.
                    if time.monotonic() > deadline:
                        raise TransientError(f"{label} took longer than {self.timeout:g}s")
                    if not event.data:
                        continue  # an event without data (a keep-alive): nothing to read
                    if event.data == "[DONE]":
                        return "".join(parts), finish_reason
                    chunk = event.json()
                    # vLLM reports an error to a streaming client as an event.
                    if "error" in chunk or chunk.get("object") == "error":
                        raise TransientError(f"{label} error: {error_message(chunk)}")
                    choice = chunk["choices"][0]
                    parts.append(choice.get("text", ""))
                    finish_reason = choice.get("finish_reason") or finish_reason
        except SSEError as e:
            # The server answered, but not with a stream (httpx-sse files this under transport errors).
            raise TransientError(f"{label} did not stream: {e}") from None
        except httpx.HTTPError as e:
            raise classify_transport_error(label, e) from None
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            raise TransientError(f"{label} sent a malformed event: {e!r}") from None
        raise TransientError(f"{label} stream ended without [DONE]")


def _mask_key_in_errors(cls):
    """Wrap each public method `cls` defines so that the errors it raises, or
    returns in a prompt's place (VllmClient.score_each), show "[API key]" for
    the agent's key: an error's text is the server's (its error body, a
    redirect's Location), and one that echoes the Authorization header put the
    key on the run's page for every viewer, in the worker's log and in Check
    connection. The one place every backend's errors leave the client by."""
    for name, method in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(method):
            setattr(cls, name, _masking_key(method))


def _masking_key(method):
    @functools.wraps(method)
    def masked(self, *args, **kwargs):
        try:
            result = method(self, *args, **kwargs)
        except InferenceError as e:
            _mask(e, self._api_key)
            raise
        if isinstance(result, list):
            for item in result:
                if isinstance(item, InferenceError):
                    _mask(item, self._api_key)
        return result

    return masked


def _mask(error, key):
    if key and error.args and isinstance(error.args[0], str):
        error.args = (mask_key(error.args[0], key), *error.args[1:])


def json_content(body, headers=None):
    """httpx's keyword arguments for a JSON request body (none for None),
    encoded with orjson: a score call's prompt is thousands of ids, which
    the standard library takes about 1 ms of CPU to encode (orjson: 0.04 ms)."""
    if body is None:
        return {"headers": headers}
    return {"content": orjson.dumps(body), "headers": {**(headers or {}), "Content-Type": "application/json"}}


def json_loads(content):
    """A JSON answer as the standard library reads it (ValueError when it is
    not JSON), with orjson where that is the same (a vLLM answer with prompt
    log-probabilities is megabytes): the standard library reads a run of 20
    digits (orjson makes an integer beyond 64 bits a float) and what orjson
    refuses (NaN, Infinity)."""
    if len(content) < ORJSON_FROM or has_long_number(content):
        return json.loads(content)
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return json.loads(content)

def has_long_number(raw):
    """Whether the bytes hold a run of 20 digits or more (orjson reads an
    integer beyond 64 bits as a float, the standard library as an integer).
    Digits in strings count too: they only make the parse the standard
    library's. A few numpy passes, 0.05 ms for 50 kB."""
    codes = np.frombuffer(raw, np.uint8)
    breaks = np.flatnonzero((codes < 48) | (codes > 57))
    edges = np.concatenate(([-1], breaks, [len(codes)]))
    return bool(np.diff(edges).max() > 20)


@functools.cache
def _ssl_context():
    """httpx's default verification (certifi, or SSL_CERT_FILE / SSL_CERT_DIR),
    built once per process: building it loads the CA bundle, ~40 ms of CPU
    that every client (each task, each command) paid again."""
    return httpx.create_ssl_context()


def span_totals(logprob_at, spans):
    """The sum of logprob_at(p) over each span [start, end), in order."""
    return [math.fsum(logprob_at(p) for p in range(start, end)) for start, end in spans]


_mask_key_in_errors(InferenceClient)
