"""The state every handler shares: settings, the model being served, faults, jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
from aiohttp import web

from . import validation as v
from .config import ServerConfig
from .engines import make_engine
from .faults import CapacityGate, Faults
from .training import Trainer

# Bodies (and texts) above this are parsed off the event loop so other requests keep flowing.
LARGE_BODY = 64 * 1024
# Bodies this long are parsed with orjson where it parses the same (parse_json).
ORJSON_FROM = 4096
# An n-gram /score of fewer tokens runs on the event loop (RefServer.cpu_unless_small).
INLINE_SCORE_TOKENS = 16384
# A 262,144-token prompt is about 2 MB of JSON; training requests carry long contexts.
MAX_BODY_BYTES = 64 * 1024 * 1024


class RefServer:
    """Everything the handlers share: settings, the current model, faults, jobs."""

    def __init__(self, config: ServerConfig):
        self.engine = make_engine(config)
        if self.engine.max_model_len is not None and config.max_prompt_tokens > self.engine.max_model_len:
            config = dataclasses.replace(config, max_prompt_tokens=self.engine.max_model_len)
        self.config = config
        self.tokenizer = self.engine.tokenizer
        self.faults = Faults(config.faults, config.seed)
        self.gate = CapacityGate(config.faults.capacity)
        self.trainer = Trainer(config.state_dir, self.engine, self.faults)
        # Replaced whole when a training job finishes; a request keeps the model it started with.
        self.model = self.trainer.load()
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="refserver-cpu")
        self.started_at = time.time()
        self.in_flight = 0
        self.max_in_flight = 0

    async def cpu(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run CPU-heavy work in a thread; numpy releases the GIL for most of it."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def cpu_unless_small(self, fn: Callable[[], Any], n_tokens: int) -> Any:
        """``cpu(fn)``, but an n-gram model's work on fewer than
        INLINE_SCORE_TOKENS runs here on the event loop: about 1 ms of numpy
        on small arrays that hold the GIL anyway, where the hand-off to a
        thread and back cost ~0.8 ms of CPU a call (bench/score_speed.py).
        The transformer engine's work (torch releases the GIL) always goes to
        a thread."""
        if self.engine.name == "ngram" and n_tokens < INLINE_SCORE_TOKENS:
            return fn()
        return await self.cpu(fn)

    def check_auth(self, request: web.Request) -> None:
        key = self.config.api_key
        if key is None:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise v.BadRequest("missing bearer token: send 'Authorization: Bearer <api key>'", 401)
        if not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise v.BadRequest("invalid bearer token", 401)

    async def read_json(self, request: web.Request) -> dict[str, Any]:
        """The body as a JSON object, naming the served model if it names one. Parsed
        once per request (an endpoint's classifier may read it before its handler)."""
        if _BODY in request:
            return request[_BODY]
        raw = await request.read()
        if not raw.strip():
            raise v.BadRequest("request body is empty; expected a JSON object")
        try:
            body = parse_json(raw) if len(raw) < LARGE_BODY else await self.cpu(parse_json, raw)
        except (ValueError, RecursionError) as e:
            raise v.BadRequest(f"request body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise v.BadRequest("request body must be a JSON object")
        model = body.get("model")
        if model is not None and model != self.config.model:
            raise v.BadRequest(f"model {model!r} does not exist; this server serves {self.config.model!r}", 404)
        request[_BODY] = body
        return body


def parse_json(raw: bytes) -> Any:
    """A request body as the standard library parses it, with orjson where
    that is the same (a prompt of 10k ids: 0.15 ms instead of 0.8). The
    standard library parses where orjson would differ: a run of 20 digits
    (orjson turns an integer beyond 64 bits into a float), and where orjson
    refuses (NaN, invalid JSON), so every error message stays the same."""
    if len(raw) < ORJSON_FROM or has_long_number(raw):
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def has_long_number(raw: bytes) -> bool:
    """Whether the bytes hold a run of 20 digits or more (orjson reads an
    integer beyond 64 bits as a float, the standard library as an integer).
    Digits in strings count too: they only make the parse the standard
    library's. A few numpy passes, 0.05 ms for 50 kB."""
    codes = np.frombuffer(raw, np.uint8)
    breaks = np.flatnonzero((codes < 48) | (codes > 57))
    edges = np.concatenate(([-1], breaks, [len(codes)]))
    return bool(np.diff(edges).max() > 20)


SERVER = web.AppKey("refserver", RefServer)
_BODY = "refserver.json_body"
