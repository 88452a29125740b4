"""How failures reach a client: a JSON error body shaped as the surface that owns
the path shapes it (see ``error_body``), or a closed socket where that is the
point (a 'drop' fault, a client gone)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from . import validation as v
from .server import MAX_BODY_BYTES

log = logging.getLogger(__name__)

RequestHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Error body styles. memscore: {"error": "<message>"}. vllm: vLLM's ErrorResponse,
# {"error": {"message", "type", "param", "code"}} (vllm/entrypoints/openai/engine/
# protocol.py ErrorInfo/ErrorResponse, read at commit 040a2cc2a629). sglang: SGLang's
# OpenAI-compatible ErrorResponse {"object": "error", "message", "type", "param",
# "code"}; sglang_native: what SGLang's /generate answers for a ValueError,
# {"error": {"message"}} with status 400 (http_server.py _create_error_response,
# read at commit 0025436eab05).
STYLES = ("memscore", "vllm", "sglang", "sglang_native")
# Path (as routed) -> style; paths not listed, and paths with no route, use the default.
ERROR_STYLES = web.AppKey("error_styles", dict)
DEFAULT_STYLE = web.AppKey("default_error_style", str)

_VLLM_TYPES = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError", 500: "InternalServerError"}


class DropConnection(Exception):
    """Raised to close the socket without any response (the 'drop' fault)."""


def style_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    styles = request.app.get(ERROR_STYLES, {})
    if resource is not None and resource.canonical in styles:
        return styles[resource.canonical]
    return request.app.get(DEFAULT_STYLE, "memscore")


def error_body(style: str, status: int, message: str) -> dict[str, Any]:
    if style == "vllm":
        kind = _VLLM_TYPES.get(status, HTTPStatus(status).phrase)
        return {"error": {"message": message, "type": kind, "param": None, "code": status}}
    if style == "sglang":
        kind = "BadRequestError" if status == 400 else HTTPStatus(status).phrase
        return {"object": "error", "message": message, "type": kind, "param": None, "code": status}
    if style == "sglang_native":
        return {"error": {"message": message}}
    return {"error": message}


def error_response(status: int, message: str, style: str = "memscore") -> web.Response:
    return web.json_response(error_body(style, status, message), status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler: RequestHandler) -> web.StreamResponse:
    """Every failure becomes a JSON error body with a fitting status; nothing a client
    sends can stop the server."""
    try:
        return await handler(request)
    except v.BadRequest as e:
        return error_response(e.status, e.message, style_of(request))
    except (DropConnection, ConnectionError):
        # A 'drop' fault, or a client gone in the middle of a stream: close the socket
        # with no (further) response. aiohttp ends a cancelled handler's connection
        # quietly, where any other exception would be logged and answered with a 500.
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError() from None
    except web.HTTPException as e:
        return _http_error(request, e)
    except asyncio.CancelledError:
        raise
    except Exception as e:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, f"internal error: {type(e).__name__}: {e}", style_of(request))


def _http_error(request: web.Request, e: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (no route, wrong method, body too large)."""
    style = style_of(request)
    if style != "memscore" and e.status in (404, 405):
        # vLLM and SGLang are FastAPI apps: an unknown path or method gets Starlette's body.
        return web.json_response({"detail": HTTPStatus(e.status).phrase}, status=e.status)
    if e.status == 404:
        return error_response(404, f"not found: {request.method} {request.path}", style)
    if e.status == 405:
        return error_response(405, f"method {request.method} not allowed on {request.path}", style)
    if e.status == 413:
        return error_response(413, f"request body too large (limit {MAX_BODY_BYTES} bytes)", style)
    return error_response(e.status, e.reason or e.text or "error", style)
