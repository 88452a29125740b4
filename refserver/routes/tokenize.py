"""``POST /tokenize`` and ``/detokenize`` (under ``/v1`` and at the root, as vLLM)."""

from __future__ import annotations

from aiohttp import web

from .. import validation as v
from ..endpoint import Call, endpoint
from ..server import LARGE_BODY, RefServer


@endpoint("tokenize")
async def tokenize(request: web.Request, server: RefServer, call: Call) -> web.Response:
    body = await server.read_json(request)
    prompt = v.string(body.get("prompt"), "prompt")
    if body.get("add_special_tokens") is not None:
        # Nothing to add: this tokenizer has no BOS/EOS; accepted for vLLM compatibility.
        v.boolean(body["add_special_tokens"], "add_special_tokens")
    encode = server.tokenizer.encode
    ids = encode(prompt) if len(prompt) < LARGE_BODY else await server.cpu(encode, prompt)
    await call.token_latency(len(ids))
    return web.json_response({"tokens": ids, "count": len(ids), "max_model_len": server.config.max_prompt_tokens})


@endpoint("detokenize")
async def detokenize(request: web.Request, server: RefServer, call: Call) -> web.Response:
    body = await server.read_json(request)
    ids = v.token_ids(body.get("tokens"), "tokens", server.tokenizer.vocab_size, allow_empty=True)
    await call.token_latency(len(ids))
    return web.json_response({"prompt": server.tokenizer.decode(ids.tolist())})
