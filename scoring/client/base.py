"""The one place memscore talks HTTP to an inference server.

Errors are sorted so callers can decide what to do:
- TransientError: worth retrying (connection refused, 5xx, timeout, a dropped
  connection, an error in a 2xx body).
- OutcomeUnknown: a TransientError where the request may have reached the
  server (it timed out or dropped after sending). Safe to retry only for
  idempotent calls, or with the same Idempotency-Key.
- PermanentError: the server rejected the request (4xx); retrying won't help.
"""

import json
import logging
import random
import time

import httpx
from django.conf import settings
from httpx_sse import SSEError, connect_sse

log = logging.getLogger(__name__)

SCORE_PRIORITY = 5
ALTERNATE_PRIORITY = -5


class InferenceError(Exception):
    transient = False


class TransientError(InferenceError):
    transient = True


class OutcomeUnknown(TransientError):
    pass


class PermanentError(InferenceError):
    pass


class InferenceClient:
    def __init__(self, base_url, model, api_key="", timeout=300.0, connect_timeout=5.0):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    @classmethod
    def for_agent(cls, agent):
        return cls(agent.base_url, agent.model, agent.get_api_key(), agent.request_timeout)

    def close(self):
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- endpoints ------------------------------------------------------

    def score(self, prompt_ids, priority=SCORE_PRIORITY):
        """Sum of log-probabilities of each assistant response in the prompt."""
        body = {"model": self.model, "prompt": prompt_ids, "logprobs": 1, "priority": priority}
        data = self._post_json("/score", body)
        try:
            return [float(s["total_logprob"]) for s in data["scores"]]
        except (KeyError, TypeError, ValueError) as e:
            raise TransientError(f"/score answered without valid scores: {e!r}") from None

    def tokenize(self, text):
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        data = self._post_json("/tokenize", body)
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise TransientError("/tokenize answered without a list of integer tokens")
        return tokens

    def complete(self, prompt_ids, *, temperature=0.6, top_p=0.95, top_k=20, max_tokens=256,
                 priority=ALTERNATE_PRIORITY):
        """Stream a completion and return its text (as the reference's alternates)."""
        body = {
            "model": self.model,
            "prompt": prompt_ids,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "max_tokens": max_tokens,
            "priority": priority,
            "stream": True,
        }
        parts = []
        deadline = time.monotonic() + self.timeout
        try:
            with connect_sse(self.http, "POST", self.base_url + "/completions", json=body) as events:
                if events.response.status_code >= 400:
                    events.response.read()
                    self._raise_for_status(events.response, "/completions")
                for event in events.iter_sse():
                    # The read timeout restarts with every chunk; this bounds the whole stream.
                    if time.monotonic() > deadline:
                        raise TransientError(f"/completions took longer than {self.timeout:g}s")
                    if not event.data:
                        continue  # an event without data (a keep-alive): nothing to read
                    if event.data == "[DONE]":
                        return "".join(parts)
                    chunk = event.json()
                    if "error" in chunk:
                        raise TransientError(f"/completions error: {chunk['error']}")
                    parts.append(chunk["choices"][0].get("text", ""))
        except SSEError as e:
            # The server answered, but not with a stream (httpx-sse files this under transport errors).
            raise TransientError(f"/completions did not stream: {e}") from None
        except httpx.HTTPError as e:
            raise _classify_transport_error("/completions", e) from None
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise TransientError(f"/completions sent a malformed event: {e!r}") from None
        raise TransientError("/completions stream ended without [DONE]")

    def train(self, samples, idempotency_key):
        """POST /train; returns the server's job id."""
        body = {"training_data": {"samples": samples}}
        data = self._post_json("/train", body, headers={"Idempotency-Key": idempotency_key})
        job_id = data.get("job_id")
        if not job_id:
            raise OutcomeUnknown("/train answered without a job_id")
        return str(job_id)

    def train_status(self, job_id):
        # A failed job's status carries its "error": that is the answer, not a failed call.
        return self._request_json("GET", f"/train/{job_id}", body_error_fails=False)

    # --- plumbing -------------------------------------------------------

    def _post_json(self, path, body, headers=None):
        return self._request_json("POST", path, body, headers)

    def _request_json(self, method, path, body=None, headers=None, body_error_fails=True):
        deadline = time.monotonic() + self.timeout
        try:
            with self.http.stream(method, self.base_url + path, json=body, headers=headers) as r:
                chunks = []
                # httpx's read timeout restarts with every chunk; this bounds the whole call.
                for chunk in r.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise OutcomeUnknown(f"{path} took longer than {self.timeout:g}s")
                content = b"".join(chunks)
                status = r.status_code
        except httpx.HTTPError as e:
            raise _classify_transport_error(path, e) from None
        try:
            data = json.loads(content) if content else {}
        except ValueError:
            data = None
        if status >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            message = message or content[:200].decode("utf-8", "replace") or "no body"
            error = f"{path} HTTP {status}: {message}"
            if status >= 500 or status in (408, 429):
                raise TransientError(error)
            raise PermanentError(error)
        if not isinstance(data, dict):
            raise TransientError(f"{path} HTTP {status}: the body is not a JSON object")
        if body_error_fails and "error" in data:
            raise TransientError(f"{path} error: {data['error']}")
        return data

    def _raise_for_status(self, response, path):
        try:
            message = response.json().get("error")
        except ValueError:
            message = response.text[:200]
        error = f"{path} HTTP {response.status_code}: {message}"
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise TransientError(error)
        raise PermanentError(error)


def _classify_transport_error(path, error):
    if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TransientError(f"{path}: cannot connect ({type(error).__name__}: {error})")
    # The request went out; we do not know whether the server acted on it.
    return OutcomeUnknown(f"{path}: no answer ({type(error).__name__}: {error or 'connection dropped'})")


def call_with_retries(fn, *, attempts=None, backoff=None, retry_unknown=True, on_retry=None):
    """Call fn(), retrying transient errors with exponential backoff and jitter.

    Permanent errors raise at once. With retry_unknown=False an OutcomeUnknown
    raises at once too (the caller must decide how to resend safely).
    """
    attempts = attempts or settings.MEMSCORE_CALL_ATTEMPTS
    backoff = settings.MEMSCORE_RETRY_BACKOFF if backoff is None else backoff
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TransientError as e:
            if attempt == attempts or (isinstance(e, OutcomeUnknown) and not retry_unknown):
                raise
            delay = backoff * (2 ** (attempt - 1)) * (0.5 + random.random())
            log.warning("attempt %d/%d failed (%s); retrying in %.2fs", attempt, attempts, e, delay)
            if on_retry:
                on_retry(attempt, e)
            time.sleep(delay)
