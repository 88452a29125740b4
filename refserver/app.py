"""The aiohttp application: which path goes to which handler for the API surfaces
``--api`` picks, and the background task that runs training jobs. The handlers are
in ``routes/``, the path every call takes in ``endpoint.py``, the shared state in
``server.py``.

Surfaces (each route with the error style of the server it imitates):

- memscore: ``/v1/score``, ``/v1/tokenize`` and ``/v1/detokenize`` (also at the root),
  ``/v1/completions``, ``/v1/train``, ``/v1/train/<id>``, ``/v1/models``,
  ``/health`` and ``/v1/health``.
- vllm (as vllm/entrypoints/openai/api_server.py serves them): ``/v1/completions``,
  ``/tokenize`` and ``/detokenize`` at the root only, ``/v1/models``, ``/health``.
- sglang (as python/sglang/srt/entrypoints/http_server.py): ``/generate``,
  ``/v1/completions``, ``/tokenize``, ``/detokenize``, ``/v1/models``,
  ``/get_model_info``, ``/health``. (SGLang also serves ``/v1/tokenize``; it is left
  out here so that tests show memscore uses the root path.)
- all: memscore's surface plus ``/generate`` and ``/get_model_info``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .errors import DEFAULT_STYLE, ERROR_STYLES, errors_as_json
from .routes.completions import completions
from .routes.control import control_faults, control_stats
from .routes.health import health, models
from .routes.metrics import metrics
from .routes.scoring import score
from .routes.sglang import generate_native, get_model_info
from .routes.tokenize import detokenize, tokenize
from .routes.training import train, train_status
from .server import MAX_BODY_BYTES, SERVER, RefServer

__all__ = ["RefServer", "build_app"]

# (method, path, handler, error style)
Route = tuple[str, str, Any, str]

_MEMSCORE: list[Route] = [
    ("GET", "/health", health, "memscore"),
    ("GET", "/v1/health", health, "memscore"),
    ("GET", "/v1/models", models, "memscore"),
    ("POST", "/v1/score", score, "memscore"),
    ("POST", "/v1/tokenize", tokenize, "memscore"),
    ("POST", "/v1/detokenize", detokenize, "memscore"),
    ("POST", "/tokenize", tokenize, "memscore"),
    ("POST", "/detokenize", detokenize, "memscore"),
    ("POST", "/v1/completions", completions, "memscore"),
    ("POST", "/v1/train", train, "memscore"),
    ("GET", "/v1/train/{job_id}", train_status, "memscore"),
]
_VLLM: list[Route] = [
    ("GET", "/health", health, "vllm"),
    ("GET", "/v1/models", models, "vllm"),
    ("POST", "/v1/completions", completions, "vllm"),
    ("POST", "/tokenize", tokenize, "vllm"),
    ("POST", "/detokenize", detokenize, "vllm"),
]
_SGLANG_NATIVE: list[Route] = [
    ("POST", "/generate", generate_native, "sglang_native"),
    ("PUT", "/generate", generate_native, "sglang_native"),
    ("GET", "/get_model_info", get_model_info, "sglang"),
]
_SGLANG: list[Route] = [
    ("GET", "/health", health, "sglang"),
    ("GET", "/v1/models", models, "sglang"),
    ("POST", "/v1/completions", completions, "sglang"),
    ("POST", "/tokenize", tokenize, "sglang"),
    ("POST", "/detokenize", detokenize, "sglang"),
    *_SGLANG_NATIVE,
]
SURFACES: dict[str, list[Route]] = {
    "memscore": _MEMSCORE,
    "vllm": _VLLM,
    "sglang": _SGLANG,
    "all": _MEMSCORE + _SGLANG_NATIVE,
}


def build_app(server: RefServer) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_BODY_BYTES)
    app[SERVER] = server
    api = server.config.api
    styles: dict[str, str] = {}
    for method, path, handler, style in SURFACES[api]:
        app.router.add_route(method, path, handler)
        styles[path] = style
    default_style = {"vllm": "vllm", "sglang": "sglang"}.get(api, "memscore")
    # Counters, as vLLM and SGLang serve theirs, on every surface.
    app.router.add_get("/metrics", metrics)
    styles["/metrics"] = default_style
    app[ERROR_STYLES] = styles
    app[DEFAULT_STYLE] = default_style
    if server.config.enable_control:
        # Test control is memscore's own, served on every surface with its error style.
        app.router.add_get("/v1/_control/faults", control_faults)
        app.router.add_post("/v1/_control/faults", control_faults)
        app.router.add_get("/v1/_control/stats", control_stats)
        styles.update(dict.fromkeys(("/v1/_control/faults", "/v1/_control/stats"), "memscore"))
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
