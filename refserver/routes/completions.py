"""``POST /v1/completions``: OpenAI text completions, whole or as server-sent events.

One handler serves every surface; ``--api`` picks the details. All surfaces take
one prompt or a batch (a list of strings or of id lists: one choice each, in
order), ``prompt_logprobs`` and ``echo`` with ``logprobs`` as vLLM does (see
openai_logprobs.py). With ``--api vllm`` the choices are shaped as vLLM's
CompletionResponseChoice (vllm/entrypoints/openai/completion/protocol.py, read at
commit 002032ee2b18: ``token_ids`` only with ``return_token_ids``) and a non-zero
``priority`` is refused as vLLM refuses it without ``--scheduling-policy priority``.
Elsewhere every choice carries its ``token_ids``, as memscore's protocol has it.
"""

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
from ..logprobs import position_details, prompt_token_logprobs
from ..model import LanguageModel
from ..openai_logprobs import echo_logprobs, vllm_prompt_logprobs
from ..request_bodies import CompletionOptions, completion_request
from ..server import RefServer
from ..usage import count_scored


async def completion_group(request: web.Request, server: RefServer) -> str:
    """A request for prompt log-probabilities is scoring; anything else generation."""
    try:
        body = await server.read_json(request)
    except v.BadRequest:
        return "completions"  # the handler answers the error
    scoring = body.get("prompt_logprobs") is not None or (body.get("echo") is True and body.get("logprobs") is not None)
    return "score" if scoring else "completions"


@endpoint(completion_group)
async def completions(request: web.Request, server: RefServer, call: Call) -> web.StreamResponse:
    body = await server.read_json(request)
    config = server.config
    prompts, params, options = await server.cpu(
        completion_request, body, server.tokenizer, config.max_prompt_tokens, config.seed
    )
    if config.api == "vllm" and options.priority != 0 and config.scheduling_policy != "priority":
        # vLLM's engine refuses it (add_request: "Got priority ... but Priority scheduling is not enabled.").
        raise v.BadRequest(f"Got priority {options.priority} but Priority scheduling is not enabled.")
    model = server.model
    choices = await server.cpu(_choices, model, prompts, params, options, call.neg_inf, config.api)
    base = {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": config.model,
    }
    n_prompt = sum(len(ids) for ids in prompts)
    if call.endpoint == "score":
        # vLLM computes every position of a prompt-logprobs request.
        for ids in prompts:
            count_scored(server, len(ids), len(ids))
    n_generated = sum(len(c.result.token_ids) for c in choices)
    usage = {"prompt_tokens": n_prompt, "completion_tokens": n_generated, "total_tokens": n_prompt + n_generated}
    if not options.stream:
        await call.token_latency(n_prompt + n_generated)
        extra = {"system_fingerprint": None, "service_tier": None} if config.api == "vllm" else {}
        return web.json_response({**base, "choices": [c.body for c in choices], "usage": usage, **extra})
    await call.token_latency(n_prompt)
    include_usage = _wants_usage(body.get("stream_options"))
    return await _stream(request, server, call, choices, base, usage if include_usage else None)


class _Choice:
    """One prompt's completion and its whole (non-streamed) choice."""

    def __init__(self, index: int, result: Completion, body: dict[str, Any]):
        self.index = index
        self.result = result
        self.body = body


def _choices(
    model: LanguageModel,
    prompts: list[list[int]],
    params: Any,
    options: CompletionOptions,
    neg_inf: bool,
    api: str,
) -> list[_Choice]:
    tokenizer = model.tokenizer
    out = []
    for index, ids in enumerate(prompts):
        result = generate(model, ids, params) if params.max_tokens > 0 else Completion()
        text, logprobs = result.text, _logprobs_block(result, tokenizer, range(len(result.token_ids)))
        # As vLLM: echo asks for the prompt's log-probabilities at the `logprobs` width.
        width = options.prompt_logprobs
        if width is None and options.echo and params.logprobs is not None:
            width = params.logprobs
        prompt_logprobs = None
        if width is not None:
            values = prompt_token_logprobs(model, ids, 1, neg_inf=neg_inf)
            details = position_details(model, ids, range(1, len(ids)), width or 0)
            prompt_logprobs = vllm_prompt_logprobs(tokenizer, ids, values, details)
            if options.echo and params.logprobs is not None:
                logprobs = echo_logprobs(tokenizer, ids, values, details, result)
        if options.echo:
            text = tokenizer.decode(ids) + text
        body: dict[str, Any] = {
            "index": index,
            "text": text,
            "logprobs": logprobs,
            "finish_reason": result.finish_reason,
        }
        if api == "vllm":
            body["stop_reason"] = None
            body["token_ids"] = result.token_ids if options.return_token_ids else None
            body["prompt_logprobs"] = prompt_logprobs
            body["prompt_token_ids"] = ids if options.return_token_ids else None
        else:
            body["token_ids"] = result.token_ids
            if prompt_logprobs is not None:
                body["prompt_logprobs"] = prompt_logprobs
        out.append(_Choice(index, result, body))
    return out


def _wants_usage(options: Any) -> bool:
    options = options or {}
    return bool(isinstance(options, dict) and options.get("include_usage"))


async def _stream(
    request: web.Request,
    server: RefServer,
    call: Call,
    choices: list[_Choice],
    base: dict[str, Any],
    usage: dict[str, int] | None,
) -> web.StreamResponse:
    """One event per generated token (prompt by prompt), a usage event if asked for, then ``[DONE]``."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await call.pay_latency()  # before the first event, as the whole answer would wait
    await response.prepare(request)

    async def send(data: Any) -> None:
        payload = data if isinstance(data, str) else json.dumps(data)
        await response.write(f"data: {payload}\n\n".encode())

    tokenizer = server.tokenizer
    for choice in choices:
        result = choice.result
        last = len(result.token_ids) - 1
        for i, (token, piece) in enumerate(zip(result.token_ids, result.pieces)):
            await call.token_latency(1)
            chunk = {
                "index": choice.index,
                "text": piece,
                "logprobs": _logprobs_block(result, tokenizer, [i]),
                "finish_reason": result.finish_reason if i == last else None,
            }
            if server.config.api != "vllm" or choice.body.get("token_ids") is not None:
                chunk["token_ids"] = [token]
            await send({**base, "choices": [chunk]})
    if usage is not None:
        await send({**base, "choices": [], "usage": usage})
    await send("[DONE]")
    await response.write_eof()
    return response


def _logprobs_block(result: Completion, tokenizer: Any, indices: Sequence[int]) -> dict[str, Any] | None:
    """The OpenAI completions ``logprobs`` object for the given generated tokens."""
    if not result.token_logprobs:
        return None
    indices = list(indices)
    offsets = np.cumsum([0] + [len(p) for p in result.pieces]).tolist()
    return {
        "tokens": [tokenizer.token_str(result.token_ids[i]) for i in indices],
        "token_logprobs": [result.token_logprobs[i] for i in indices],
        "top_logprobs": [result.top_logprobs[i] for i in indices],
        "text_offset": [offsets[i] for i in indices],
    }
