"""``GET /metrics``: the engine's counters since start-up, in Prometheus' text format
(as vLLM and SGLang serve theirs): tokens computed and tokens served from the KV
prefix cache, the cache's size, and the model version being served. Never counted,
delayed or failed, like ``/health``."""

from __future__ import annotations

from aiohttp import web

from ..server import SERVER


async def metrics(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    lines = [f'refserver_info{{engine="{server.engine.name}",model="{server.config.model}"}} 1']
    for name, value in server.engine.metrics().items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lines.append(f"refserver_{name} {value}")
        elif value is not None:
            lines.append(f'refserver_{name}{{value="{value}"}} 1')
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")
