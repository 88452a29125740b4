"""The client's error taxonomy, how a server's error body becomes a message, and retries.

Errors are sorted so callers can decide what to do:
- TransientError: worth retrying (connection refused, 5xx, timeout, a dropped
  connection, an error in a 2xx body, an answer without the expected fields).
- OutcomeUnknown: a TransientError where the request may have reached the
  server (it timed out or dropped after sending). Safe to retry only for
  idempotent calls, or with the same Idempotency-Key.
- PermanentError: the server rejected the request (4xx), or its answer can
  never give a right number (a -inf log-probability, a count that does not
  match the prompt); retrying won't help.
"""

import json
import logging
import random
import re
import time

import httpx
from django.conf import settings

log = logging.getLogger(__name__)


class InferenceError(Exception):
    transient = False

    def __init__(self, message, *, status=None):
        super().__init__(message)
        # The HTTP status the server answered with, when it answered one.
        self.status = status


class TransientError(InferenceError):
    transient = True


class OutcomeUnknown(TransientError):
    pass


class PermanentError(InferenceError):
    pass


# What an error shows in place of the agent's API key.
KEY_SHOWN = "[API key]"
# A copy of the key cut short (an error keeps the first 300 characters of a
# body) is masked down to this many of its characters.
KEY_PREFIX_MASKED = 8


def mask_key(text, key):
    """`text` with `key` in it replaced by KEY_SHOWN, as are copies of it cut
    short down to their first KEY_PREFIX_MASKED characters: a server that echoes
    the request's headers in its error body puts the key in the error."""
    if not key:
        return text
    text = text.replace(key, KEY_SHOWN)
    head = key[:KEY_PREFIX_MASKED]
    if len(key) <= len(head) or head not in text:
        return text
    parts, at = [], 0
    while (start := text.find(head, at)) != -1:
        end = start + len(head)
        while end < len(text) and end - start < len(key) and text[end] == key[end - start]:
            end += 1
        parts += [text[at:start], KEY_SHOWN]
        at = end
    return "".join(parts) + text[at:]


def error_message(data, content=b""):
    """The message of a server's error body, whichever server wrote it.

    Shapes read (see the comments in vllm.py and sglang.py for the sources):
    memscore's and the reference server's {"error": str}; vLLM's
    {"error": {"message", "type", "param", "code"}} and SGLang's native
    {"error": {"message"}}; the older OpenAI-style {"object": "error",
    "message", ...} (vLLM before 0.10, SGLang's OpenAI endpoints); FastAPI's
    {"detail": str | [{"loc", "msg", ...}]}.
    """
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if error:
            return error if isinstance(error, str) else json.dumps(error)
        if data.get("message"):
            return str(data["message"])
        detail = data.get("detail")
        if isinstance(detail, list):
            return "; ".join(_detail_item(item) for item in detail) or "no detail"
        if detail:
            return str(detail)
    text = content[:300].decode("utf-8", "replace").strip() if content else ""
    return text or "no body"


def _detail_item(item):
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc", []) if part != "body")
    return f"{where}: {item.get('msg', item)}" if where else str(item.get("msg", item))


# A 404 whose message names a model that "does not exist" or is "not found": the
# path is there, the model name is wrong. vLLM: "The model `m` does not exist."
# (NotFoundError, in either error shape); OpenAI adds "or you do not have access
# to it"; Ollama: 'model "m" not found'; the reference server: "model 'm' does
# not exist; this server serves ...". A path the server lacks reads otherwise:
# FastAPI's {"detail": "Not Found"} (vLLM, SGLang), the reference server's
# "not found: POST /v1/tokenize" (no "model" before "not found").
_UNKNOWN_MODEL = re.compile(r"\bmodel\b.{0,300}?(?:does not exist|not found)", re.IGNORECASE)


def unknown_model(error):
    """Whether the error is a 404 saying the requested model does not exist."""
    return getattr(error, "status", None) == 404 and _UNKNOWN_MODEL.search(str(error)) is not None


def status_error(label, status, message):
    """The error for an HTTP error status: 5xx, 408 and 429 are worth retrying."""
    error = f"{label} HTTP {status}: {message}"
    if status >= 500 or status in (408, 429):
        return TransientError(error, status=status)
    return PermanentError(error, status=status)


# A Location is the server's text: shown this long at most.
LOCATION_SHOWN = 300


def redirect_error(label, status, location, asked):
    """The error for a 3xx answer. memscore does not follow redirects (httpx's
    default, kept): the API key would go along to wherever they point. The
    fix is the agent's base URL, so the message says where it points and,
    when the target ends with the path asked for, the base URL that gives it."""
    said = f"{label}: the server answered {status} {httpx.codes.get_reason_phrase(status)}"
    if not location:
        return PermanentError(f"{said} without saying where: memscore does not follow redirects; "
                              f"check the agent's base URL", status=status)
    try:
        target = str(asked.join(location))
    except httpx.InvalidURL:
        target = location
    target = target[:LOCATION_SHOWN]
    base = target.removesuffix(label) if target.endswith(label) and target != label else None
    where = f"set the agent's base URL to {base}" if base else "set the agent's base URL to where it points"
    return PermanentError(f"{said} to {target}: memscore does not follow redirects (the API key would "
                          f"go along); {where}", status=status)


def classify_transport_error(label, error):
    if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TransientError(f"{label}: cannot connect ({type(error).__name__}: {error})")
    # The request went out; we do not know whether the server acted on it.
    return OutcomeUnknown(f"{label}: no answer ({type(error).__name__}: {error or 'connection dropped'})")


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
                if attempt > 1:
                    # Said where the error is shown (a call's, a run's): a permanent one is never retried.
                    e.args = (f"{e.args[0]} (gave up after {attempt} attempts)", *e.args[1:])
                raise
            delay = backoff * (2 ** (attempt - 1)) * (0.5 + random.random())
            if on_retry:
                # It may stop the retries (a cancelled run's call): then no "retrying" is logged.
                on_retry(attempt, e)
            log.warning("attempt %d/%d failed (%s); retrying in %.2fs", attempt, attempts, e, delay)
            time.sleep(delay)
