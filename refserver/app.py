"""The aiohttp application: which path goes to which handler, and the background
task that runs training jobs. The handlers are in ``routes/``, the path every call
takes in ``endpoint.py``, the shared state in ``server.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .errors import errors_as_json
from .routes.completions import completions
from .routes.control import control_faults, control_stats
from .routes.health import health, models
from .routes.scoring import score
from .routes.tokenize import detokenize, tokenize
from .routes.training import train, train_status
from .server import MAX_BODY_BYTES, SERVER, RefServer

__all__ = ["RefServer", "build_app"]


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


async def _training_worker(app: web.Application) -> AsyncIterator[None]:
    """Runs queued training jobs for as long as the application runs."""
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
