"""``GET /health`` and ``GET /v1/models``: what is served, for clients and start-up checks.

vLLM and SGLang answer ``/health`` with an empty 200 (vllm api_server.py; SGLang
http_server.py health_generate), so ``--api vllm`` and ``--api sglang`` do too;
memscore's surface answers a JSON status. ``/v1/models`` gives vLLM's ModelCard
(id, object, created, owned_by, root, parent, max_model_len, permission) or
SGLang's (id, object, created, owned_by, root, max_model_len)."""

from __future__ import annotations

import time

from aiohttp import web

from ..endpoint import Call, endpoint
from ..server import SERVER, RefServer


async def health(request: web.Request) -> web.Response:
    """Never counted, delayed or failed: test harnesses poll it to know the server is up."""
    server = request.app[SERVER]
    if server.config.api in ("vllm", "sglang"):
        return web.Response(status=200)
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
    api, name = server.config.api, server.config.model
    card = {"id": name, "object": "model", "created": int(server.started_at)}
    if api == "vllm":
        card.update(
            owned_by="vllm", root=name, parent=None, max_model_len=server.config.max_prompt_tokens, permission=[]
        )
    elif api == "sglang":
        card.update(owned_by="sglang", root=name, max_model_len=server.config.max_prompt_tokens)
    else:
        card.update(owned_by="memscore", max_model_len=server.config.max_prompt_tokens)
    return web.json_response({"object": "list", "data": [card]})
