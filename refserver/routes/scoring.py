"""``POST /v1/score``: the log-probability of each assistant response in a prompt.

With ``logprob_start`` (docs/protocol.md) only the responses that begin at or
after it are scored and nothing before it is computed; the answer echoes it
and says in ``usage`` how many positions were run (from it to the end).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import validation as v
from ..endpoint import Call, endpoint
from ..request_bodies import check_prompt_length
from ..server import RefServer
from ..usage import count_scored


@endpoint("score")
async def score(request: web.Request, server: RefServer, call: Call) -> web.Response:
    body = await server.read_json(request)
    model = server.model
    for name in ("logprobs", "priority"):
        if body.get(name) is not None:
            v.integer(body[name], name)

    # The transformer engine counts, per thread, the tokens its decoder ran and
    # those its KV prefix cache served; the n-gram engine runs from logprob_start.
    take_usage = getattr(model, "take_usage", None)

    def work() -> tuple[int, int, list[tuple[float, int]], Any]:
        ids = v.token_ids(body.get("prompt"), "prompt", model.vocab_size)
        check_prompt_length(len(ids), server.config.max_prompt_tokens)
        start = body.get("logprob_start")
        start = 0 if start is None else v.integer(start, "logprob_start", 0, max(len(ids) - 1, 0))
        if take_usage is not None:
            take_usage()  # this thread's counts start from here
        try:
            return len(ids), start, model.score(ids, start), take_usage and take_usage()
        except ValueError as e:
            raise v.BadRequest(str(e)) from None

    prompt = body.get("prompt")
    n_tokens, start, scores, used = await server.cpu_unless_small(work, len(prompt) if isinstance(prompt, list) else 0)
    computed, cached = (used.computed, used.cached) if used else (n_tokens - start, 0)
    count_scored(server, n_tokens, computed)
    await call.token_latency(computed)
    return web.json_response(
        {
            "scores": [{"total_logprob": total, "n_tokens": n} for total, n in scores],
            "prompt_tokens": n_tokens,
            "logprob_start": start,
            # The n-gram engine keeps no cache: positions before logprob_start
            # are only counted as history, never run.
            "usage": {"prompt_tokens": n_tokens, "computed_tokens": computed, "cached_tokens": cached},
            "model": server.config.model,
        }
    )
