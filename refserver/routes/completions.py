"""``POST /v1/completions``: OpenAI text completions, whole or as server-sent events."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from aiohttp import web

from .. import validation as v
from ..endpoint import Call, endpoint
from ..generation import Completion, generate
from ..request_bodies import completion_request
from ..server import RefServer


@endpoint("completions")
async def completions(request: web.Request, server: RefServer, call: Call) -> web.StreamResponse:
    body = await server.read_json(request)
    model = server.model
    config = server.config
    prompt_ids, params = await server.cpu(
        completion_request, body, server.tokenizer, config.max_prompt_tokens, config.seed
    )
    stream = v.boolean(body.get("stream", False), "stream")
    result: Completion = await server.cpu(generate, model, prompt_ids, params)
    base = {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": config.model,
    }
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
    include_usage = _wants_usage(body.get("stream_options"))
    return await _stream(request, server, call, result, base, usage if include_usage else None)


def _wants_usage(options: Any) -> bool:
    options = options or {}
    return bool(isinstance(options, dict) and options.get("include_usage"))


async def _stream(
    request: web.Request,
    server: RefServer,
    call: Call,
    result: Completion,
    base: dict[str, Any],
    usage: dict[str, int] | None,
) -> web.StreamResponse:
    """One event per generated token, a usage event if asked for, then ``[DONE]``."""
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
    if usage is not None:
        await send({**base, "choices": [], "usage": usage})
    await send("[DONE]")
    await response.write_eof()
    return response


def _logprobs_block(result: Completion, server: RefServer, indices: Sequence[int]) -> dict[str, Any] | None:
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
