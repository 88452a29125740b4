"""The HTTP server: routes, the path every model call takes, and the handlers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any, AsyncIterator, Awaitable, Callable

import numpy as np
from aiohttp import web

from . import validation as v
from .config import ServerConfig
from .faults import CapacityGate, Faults, FaultSettings
from .generation import Completion, SamplingParams, generate
from .model import ModelBuilder, Sample
from .training import IdempotencyConflict, Trainer

log = logging.getLogger(__name__)

# Bodies above this are parsed off the event loop so other requests keep flowing.
_LARGE_BODY = 64 * 1024
# A 262,144-token prompt is about 2 MB of JSON; training requests carry long contexts.
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_STOP_STRINGS = 16


class RefServer:
    """Everything the handlers share: settings, the current model, faults, jobs."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.builder = ModelBuilder()
        self.tokenizer = self.builder.tokenizer
        self.faults = Faults(config.faults, config.seed)
        self.gate = CapacityGate(config.faults.capacity)
        self.trainer = Trainer(config.state_dir, self.builder, self.faults)
        # Replaced whole when a training job finishes; a request keeps the model it started with.
        self.model = self.trainer.load()
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="refserver-cpu")
        self.started_at = time.time()
        self.in_flight = 0
        self.max_in_flight = 0

    async def cpu(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run CPU-heavy work in a thread; numpy releases the GIL for most of it."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

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
        raw = await request.read()
        if not raw.strip():
            raise v.BadRequest("request body is empty; expected a JSON object")
        try:
            body = json.loads(raw) if len(raw) < _LARGE_BODY else await self.cpu(json.loads, raw)
        except (ValueError, RecursionError) as e:
            raise v.BadRequest(f"request body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise v.BadRequest("request body must be a JSON object")
        model = body.get("model")
        if model is not None and model != self.config.model:
            raise v.BadRequest(f"model {model!r} does not exist; this server serves {self.config.model!r}", 404)
        return body


SERVER = web.AppKey("refserver", RefServer)


class Call:
    """One counted call to an endpoint; handlers use it to pay per-token latency."""

    def __init__(self, endpoint: str, number: int, settings: FaultSettings):
        self.endpoint = endpoint
        self.number = number
        self.settings = settings

    async def token_latency(self, n_tokens: int) -> None:
        delay = self.settings.latency_per_token_us * n_tokens / 1e6
        if delay > 0:
            await asyncio.sleep(delay)


Handler = Callable[[web.Request, RefServer, Call], Awaitable[web.StreamResponse]]


def endpoint(name: str, *, gated: bool = True) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """The path of every call: authenticate, count, then either an injected failure
    or the handler. A ``gated`` call is model work: it waits for capacity and pays
    the fixed latency first; reading job status or the model list does not."""

    def decorate(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            server = request.app[SERVER]
            server.check_auth(request)
            number, failure = server.faults.count_call(name)
            call = Call(name, number, server.faults.settings)
            async with _model_work(server, call) if gated else nullcontext():
                if failure is not None:
                    return await _inject_failure(request, call, failure)
                return await handler(request, server, call)

        return wrapped

    return decorate


@contextlib.asynccontextmanager
async def _model_work(server: RefServer, call: Call) -> AsyncIterator[None]:
    # In flight counts from arrival, queue included: it shows what clients sent at once.
    server.in_flight += 1
    server.max_in_flight = max(server.max_in_flight, server.in_flight)
    try:
        async with server.gate.slot():
            await asyncio.sleep(call.settings.latency_seconds())
            yield
    finally:
        server.in_flight -= 1


class _DropConnection(Exception):
    pass


async def _inject_failure(request: web.Request, call: Call, mode: str) -> web.StreamResponse:
    message = f"injected failure ({mode}) on {call.endpoint} call {call.number}"
    if mode == "http500":
        return _error(500, message)
    if mode == "error200":
        if call.endpoint == "completions" and await _wants_stream(request):
            # As vLLM reports an error to a streaming client: an event, then [DONE].
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(f"data: {json.dumps({'error': message})}\n\ndata: [DONE]\n\n".encode())
            await response.write_eof()
            return response
        return web.json_response({"error": message})
    if mode == "hang":
        await asyncio.sleep(call.settings.hang_seconds)
        return _error(504, f"{message}: held for {call.settings.hang_seconds:g} s")
    raise _DropConnection()


async def _wants_stream(request: web.Request) -> bool:
    try:
        return json.loads(await request.read()).get("stream") is True
    except (ValueError, RecursionError, AttributeError, web.HTTPException):
        return False  # any body will do: this only picks the shape of the failure


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every failure becomes ``{"error": ...}`` with a fitting status; nothing a client
    sends can stop the server."""
    try:
        return await handler(request)
    except v.BadRequest as e:
        return _error(e.status, e.message)
    except (_DropConnection, ConnectionError):
        # A 'drop' fault, or a client gone in the middle of a stream: close the socket
        # with no (further) response. aiohttp ends a cancelled handler's connection
        # quietly, where any other exception would be logged and answered with a 500.
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError() from None
    except web.HTTPException as e:
        if e.status == 404:
            return _error(404, f"not found: {request.method} {request.path}")
        if e.status == 405:
            return _error(405, f"method {request.method} not allowed on {request.path}")
        if e.status == 413:
            return _error(413, f"request body too large (limit {MAX_BODY_BYTES} bytes)")
        return _error(e.status, e.reason or e.text or "error")
    except asyncio.CancelledError:
        raise
    except Exception as e:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, f"internal error: {type(e).__name__}: {e}")


# ---- handlers ----------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    return web.json_response(
        {
            "status": "ok",
            "model": server.config.model,
            "vocab_size": server.tokenizer.vocab_size,
            "max_model_len": server.config.max_prompt_tokens,
            "uptime_s": round(time.time() - server.started_at, 3),
        }
    )


@endpoint("models", gated=False)
async def models(request: web.Request, server: RefServer, call: Call) -> web.Response:
    return web.json_response(
        {
            "object": "list",
            "data": [
                {
                    "id": server.config.model,
                    "object": "model",
                    "created": int(server.started_at),
                    "owned_by": "memscore",
                    "max_model_len": server.config.max_prompt_tokens,
                }
            ],
        }
    )


@endpoint("score")
async def score(request: web.Request, server: RefServer, call: Call) -> web.Response:
    body = await server.read_json(request)
    model = server.model

    def work() -> tuple[int, list[tuple[float, int]]]:
        ids = v.token_ids(body.get("prompt"), "prompt", model.vocab_size)
        _check_prompt_length(len(ids), server.config.max_prompt_tokens)
        return len(ids), model.score(ids)

    for name in ("logprobs", "priority"):
        if body.get(name) is not None:
            v.integer(body[name], name)
    n_tokens, scores = await server.cpu(work)
    await call.token_latency(n_tokens)
    return web.json_response(
        {
            "scores": [{"total_logprob": total, "n_tokens": n} for total, n in scores],
            "prompt_tokens": n_tokens,
            "model": server.config.model,
        }
    )


@endpoint("tokenize")
async def tokenize(request: web.Request, server: RefServer, call: Call) -> web.Response:
    body = await server.read_json(request)
    prompt = v.string(body.get("prompt"), "prompt")
    if body.get("add_special_tokens") is not None:
        # Nothing to add: this tokenizer has no BOS/EOS; accepted for vLLM compatibility.
        v.boolean(body["add_special_tokens"], "add_special_tokens")
    encode = server.tokenizer.encode
    ids = encode(prompt) if len(prompt) < _LARGE_BODY else await server.cpu(encode, prompt)
    await call.token_latency(len(ids))
    return web.json_response({"tokens": ids, "count": len(ids), "max_model_len": server.config.max_prompt_tokens})


@endpoint("detokenize")
async def detokenize(request: web.Request, server: RefServer, call: Call) -> web.Response:
    body = await server.read_json(request)
    ids = v.token_ids(body.get("tokens"), "tokens", server.tokenizer.vocab_size, allow_empty=True)
    await call.token_latency(len(ids))
    return web.json_response({"prompt": server.tokenizer.decode(ids.tolist())})


@endpoint("completions")
async def completions(request: web.Request, server: RefServer, call: Call) -> web.StreamResponse:
    body = await server.read_json(request)
    model = server.model
    prompt_ids, params = await server.cpu(_completion_request, body, server)
    stream = v.boolean(body.get("stream", False), "stream")
    result: Completion = await server.cpu(generate, model, prompt_ids, params)
    base = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()), "model": server.config.model}
    usage = {
        "prompt_tokens": len(prompt_ids),
        "completion_tokens": len(result.token_ids),
        "total_tokens": len(prompt_ids) + len(result.token_ids),
    }
    if not stream:
        await call.token_latency(len(prompt_ids) + len(result.token_ids))
        choice = {
            "index": 0,
            "text": result.text,
            "token_ids": result.token_ids,
            "logprobs": _logprobs_block(result, server, range(len(result.token_ids))),
            "finish_reason": result.finish_reason,
        }
        return web.json_response({**base, "choices": [choice], "usage": usage})

    await call.token_latency(len(prompt_ids))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)

    async def send(data: Any) -> None:
        payload = data if isinstance(data, str) else json.dumps(data)
        await response.write(f"data: {payload}\n\n".encode())

    last = len(result.token_ids) - 1
    for i, (token, piece) in enumerate(zip(result.token_ids, result.pieces)):
        await call.token_latency(1)
        choice = {
            "index": 0,
            "text": piece,
            "token_ids": [token],
            "logprobs": _logprobs_block(result, server, [i]),
            "finish_reason": result.finish_reason if i == last else None,
        }
        await send({**base, "choices": [choice]})
    options = body.get("stream_options") or {}
    if isinstance(options, dict) and options.get("include_usage"):
        await send({**base, "choices": [], "usage": usage})
    await send("[DONE]")
    await response.write_eof()
    return response


def _completion_request(body: dict[str, Any], server: RefServer) -> tuple[list[int], SamplingParams]:
    vocab = server.tokenizer.vocab_size
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one, as OpenAI clients sometimes send
    if isinstance(prompt, str):
        if not prompt:
            raise v.BadRequest("prompt is empty")
        ids = server.tokenizer.encode(prompt)
    elif isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
        raise v.BadRequest("prompt: batches of prompts are not supported; send one prompt per request")
    elif isinstance(prompt, list):
        ids = v.token_ids(prompt, "prompt", vocab).tolist()
    else:
        raise v.BadRequest("prompt: expected a string or a list of token ids")
    limit = server.config.max_prompt_tokens
    _check_prompt_length(len(ids), limit)

    def get(name: str, check: Callable[[Any], Any], default: Any) -> Any:
        value = body.get(name)
        return default if value is None else check(value)

    max_tokens = get("max_tokens", lambda x: v.integer(x, "max_tokens", 1, limit), 16)
    if len(ids) + max_tokens > limit:
        raise v.BadRequest(f"prompt ({len(ids)} tokens) plus max_tokens ({max_tokens}) exceeds the maximum model length of {limit}")
    get("n", lambda x: v.integer(x, "n", 1, 1), 1)
    get("priority", lambda x: v.integer(x, "priority"), 0)
    stop = get("stop", _stop_strings, ())
    return ids, SamplingParams(
        max_tokens=max_tokens,
        temperature=get("temperature", lambda x: v.number(x, "temperature", 0.0, 100.0), 1.0),
        top_p=get("top_p", lambda x: v.number(x, "top_p", 1e-9, 1.0), 1.0),
        top_k=get("top_k", lambda x: v.integer(x, "top_k", -1, vocab), 0),
        seed=get("seed", lambda x: v.integer(x, "seed", -(2**63), 2**64 - 1) % 2**64, server.config.seed),
        stop=stop,
        logprobs=get("logprobs", lambda x: v.integer(x, "logprobs", 0, vocab), None),
    )


def _stop_strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_STOP_STRINGS or not all(isinstance(s, str) and s for s in value):
        raise v.BadRequest(f"stop: expected a non-empty string or a list of at most {MAX_STOP_STRINGS} of them")
    return tuple(value)


def _check_prompt_length(n_tokens: int, limit: int) -> None:
    if n_tokens > limit:
        raise v.BadRequest(f"prompt has {n_tokens} tokens, more than the maximum of {limit}")


def _logprobs_block(result: Completion, server: RefServer, indices: Any) -> dict[str, Any] | None:
    """The OpenAI completions ``logprobs`` object for the given generated tokens."""
    if not result.token_logprobs:
        return None
    indices = list(indices)
    offsets = np.cumsum([0] + [len(p) for p in result.pieces]).tolist()
    return {
        "tokens": [server.tokenizer.token_str(result.token_ids[i]) for i in indices],
        "token_logprobs": [result.token_logprobs[i] for i in indices],
        "top_logprobs": [result.top_logprobs[i] for i in indices],
        "text_offset": [offsets[i] for i in indices],
    }


@endpoint("train")
async def train(request: web.Request, server: RefServer, call: Call) -> web.Response:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= 255:
        raise v.BadRequest("Idempotency-Key header must be 1 to 255 characters")
    body = await server.read_json(request)
    samples, request_hash = await server.cpu(_training_samples, body, server.tokenizer.vocab_size)
    try:
        job, created = server.trainer.submit(samples, request_hash, key)
    except IdempotencyConflict as e:
        raise v.BadRequest(str(e), 422) from None
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return web.json_response({"job_id": job.job_id, "status": job.status, "samples": len(job.samples)}, headers=headers)


def _training_samples(body: dict[str, Any], vocab_size: int) -> tuple[list[Sample], str]:
    data = body.get("training_data")
    if not isinstance(data, dict):
        raise v.BadRequest("training_data: expected an object with a 'samples' list")
    items = data.get("samples")
    if not isinstance(items, list) or not items:
        raise v.BadRequest("training_data.samples: expected a non-empty list of samples")
    samples, digest = [], hashlib.sha256()
    for i, item in enumerate(items):
        where = f"training_data.samples[{i}]"
        if not isinstance(item, dict):
            raise v.BadRequest(f"{where}: expected an object with context_ids and continuation_ids")
        context = v.token_ids(item.get("context_ids"), f"{where}.context_ids", vocab_size, allow_empty=True)
        continuation = v.token_ids(item.get("continuation_ids"), f"{where}.continuation_ids", vocab_size)
        samples.append(Sample.from_ids(context.tolist(), continuation.tolist()))
        for ids in (context, continuation):
            digest.update(len(ids).to_bytes(8, "little"))
            digest.update(ids.tobytes())
    return samples, digest.hexdigest()


@endpoint("train_status", gated=False)
async def train_status(request: web.Request, server: RefServer, call: Call) -> web.Response:
    job = server.trainer.jobs.get(request.match_info["job_id"])
    if job is None:
        raise v.BadRequest(f"no training job {request.match_info['job_id']!r}", 404)
    return web.json_response(job.public())


# ---- test control ------------------------------------------------------------


async def control_faults(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    if request.method == "POST":
        body = await server.read_json(request)
        try:
            settings = FaultSettings.from_mapping(body)
        except ValueError as e:
            raise v.BadRequest(str(e)) from None
        server.faults.replace(settings)
        await server.gate.set_limit(settings.capacity)
    return web.json_response({"faults": server.faults.settings.as_dict()})


async def control_stats(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    statuses: dict[str, int] = {}
    for job in server.trainer.jobs.values():
        statuses[job.status] = statuses.get(job.status, 0) + 1
    return web.json_response(
        {
            "calls": server.faults.calls,
            "total_calls": server.faults.total_calls,
            "max_concurrent_seen": server.max_in_flight,
            "in_flight": server.in_flight,
            "max_served_at_once": server.gate.max_active_seen,
            "train_posts": server.faults.total_calls.get("train", 0),
            "jobs": statuses,
        }
    )


# ---- the application ---------------------------------------------------------


def build_app(server: RefServer) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_BODY_BYTES)
    app[SERVER] = server
    r = app.router
    r.add_get("/health", health)
    r.add_get("/v1/health", health)
    r.add_get("/v1/models", models)
    r.add_post("/v1/score", score)
    for prefix in ("/v1", ""):  # vLLM serves these outside /v1 as well
        r.add_post(f"{prefix}/tokenize", tokenize)
        r.add_post(f"{prefix}/detokenize", detokenize)
    r.add_post("/v1/completions", completions)
    r.add_post("/v1/train", train)
    r.add_get("/v1/train/{job_id}", train_status)
    if server.config.enable_control:
        r.add_get("/v1/_control/faults", control_faults)
        r.add_post("/v1/_control/faults", control_faults)
        r.add_get("/v1/_control/stats", control_stats)
    app.cleanup_ctx.append(_training_worker)
    return app


async def _training_worker(app: web.Application):
    server = app[SERVER]

    def swap_model(model: Any) -> None:
        server.model = model

    task = asyncio.create_task(server.trainer.run(server.executor, swap_model))
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
