"""The path every call to an endpoint takes: authenticate, count the call, then, for
model work, wait for a capacity slot, and finally either fail as the fault settings
say or run the handler; model work takes at least the fixed latency from its slot on
(Call.pay_latency: the model's compute runs during it, as on a GPU).

An endpoint's name is the fault group its calls count in. It is fixed, or decided
per request from the body: a vLLM ``/v1/completions`` asking for prompt
log-probabilities, or an SGLang ``/generate`` asking for logprobs, is a ``score``
call, so ``fail_endpoints=["score"]`` hits scoring on every surface."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import nullcontext

from aiohttp import web

from .errors import DropConnection, RequestHandler, error_body, error_response, style_of
from .faults import FaultSettings
from .server import SERVER, RefServer


class Call:
    """One counted call to an endpoint; handlers use it to pay per-token latency.
    ``neg_inf`` is set when a 'neg_inf' fault picked this call: scoring handlers
    then report the last prompt token's log-probability as -inf.

    The fixed latency is the least time a model call takes once it has its
    capacity slot, the model's own compute included, as on a GPU server whose
    per-call time is its compute: it is paid (pay_latency) when the answer is
    ready, or before a streamed answer starts. The latency per token is added
    on top, as it always was."""

    def __init__(self, endpoint: str, number: int, settings: FaultSettings, neg_inf: bool = False):
        self.endpoint = endpoint
        self.number = number
        self.settings = settings
        self.neg_inf = neg_inf
        self._started: float | None = None
        self._token_delay = 0.0

    def start(self) -> None:
        self._started = asyncio.get_running_loop().time()

    async def token_latency(self, n_tokens: int) -> None:
        delay = self.settings.latency_per_token_us * n_tokens / 1e6
        if delay > 0:
            self._token_delay += delay
            await asyncio.sleep(delay)

    async def pay_latency(self) -> None:
        """Wait out what is left of the fixed latency (once; nothing for an ungated call)."""
        if self._started is None:
            return
        spent = asyncio.get_running_loop().time() - self._started - self._token_delay
        self._started = None
        left = self.settings.latency_seconds() - spent
        if left > 0:
            await asyncio.sleep(left)


Handler = Callable[[web.Request, RefServer, Call], Awaitable[web.StreamResponse]]
# Picks the endpoint name of one call from its request (the parsed body is cached).
Classifier = Callable[[web.Request, RefServer], Awaitable[str]]


def endpoint(name: str | Classifier, *, gated: bool = True) -> Callable[[Handler], RequestHandler]:
    """The path of every call: authenticate, count, then either an injected failure
    or the handler. A ``gated`` call is model work: it waits for capacity and pays
    the fixed latency first; reading job status or the model list does not."""

    def decorate(handler: Handler) -> RequestHandler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            server = request.app[SERVER]
            server.check_auth(request)
            group = name if isinstance(name, str) else await name(request, server)
            number, failure = server.faults.count_call(group)
            call = Call(group, number, server.faults.settings, neg_inf=failure == "neg_inf")
            async with _model_work(server, call) if gated else nullcontext():
                if failure is not None and failure != "neg_inf":
                    await call.pay_latency()
                    return await _inject_failure(request, call, failure)
                response = await handler(request, server, call)
                await call.pay_latency()
                return response

        return wrapped

    return decorate


@contextlib.asynccontextmanager
async def _model_work(server: RefServer, call: Call) -> AsyncIterator[None]:
    # In flight counts from arrival, queue included: it shows what clients sent at once.
    server.in_flight += 1
    server.max_in_flight = max(server.max_in_flight, server.in_flight)
    try:
        async with server.gate.slot():
            call.start()
            yield
    finally:
        server.in_flight -= 1


async def _inject_failure(request: web.Request, call: Call, mode: str) -> web.StreamResponse:
    message = f"injected failure ({mode}) on {call.endpoint} call {call.number}"
    style = style_of(request)
    if mode == "http500":
        return error_response(500, message, style)
    if mode == "error200":
        body = error_body(style, 500, message)
        if await _wants_stream(request):
            # As vLLM reports an error to a streaming client: an event, then [DONE].
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(f"data: {json.dumps(body)}\n\ndata: [DONE]\n\n".encode())
            await response.write_eof()
            return response
        return web.json_response(body)
    if mode == "hang":
        await asyncio.sleep(call.settings.hang_seconds)
        return error_response(504, f"{message}: held for {call.settings.hang_seconds:g} s", style)
    raise DropConnection()


async def _wants_stream(request: web.Request) -> bool:
    try:
        return json.loads(await request.read()).get("stream") is True
    except (ValueError, RecursionError, AttributeError, web.HTTPException):
        return False  # any body will do: this only picks the shape of the failure
