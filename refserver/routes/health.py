"""``GET /health`` and ``GET /v1/models``: what is served, for clients and start-up checks."""

from __future__ import annotations

import time

from aiohttp import web

from ..endpoint import Call, endpoint
from ..server import SERVER, RefServer


async def health(request: web.Request) -> web.Response:
    """Never counted, delayed or failed: test harnesses poll it to know the server is up."""
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
