"""How failures reach a client: always ``{"error": ...}`` with a fitting status, or
a closed socket where that is the point (a 'drop' fault, a client gone)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import validation as v
from .server import MAX_BODY_BYTES

log = logging.getLogger(__name__)

RequestHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DropConnection(Exception):
    """Raised to close the socket without any response (the 'drop' fault)."""


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler: RequestHandler) -> web.StreamResponse:
    """Every failure becomes ``{"error": ...}`` with a fitting status; nothing a client
    sends can stop the server."""
    try:
        return await handler(request)
    except v.BadRequest as e:
        return error_response(e.status, e.message)
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
        return error_response(500, f"internal error: {type(e).__name__}: {e}")


def _http_error(request: web.Request, e: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (no route, wrong method, body too large) in our shape."""
    if e.status == 404:
        return error_response(404, f"not found: {request.method} {request.path}")
    if e.status == 405:
        return error_response(405, f"method {request.method} not allowed on {request.path}")
    if e.status == 413:
        return error_response(413, f"request body too large (limit {MAX_BODY_BYTES} bytes)")
    return error_response(e.status, e.reason or e.text or "error")
