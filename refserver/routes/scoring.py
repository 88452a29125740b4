"""``POST /v1/score``: the log-probability of each assistant response in a prompt."""

from __future__ import annotations

from aiohttp import web

from .. import validation as v
from ..endpoint import Call, endpoint
from ..request_bodies import check_prompt_length
from ..server import RefServer


@endpoint("score")
async def score(request: web.Request, server: RefServer, call: Call) -> web.Response:
    body = await server.read_json(request)
    model = server.model

    def work() -> tuple[int, list[tuple[float, int]]]:
        ids = v.token_ids(body.get("prompt"), "prompt", model.vocab_size)
        check_prompt_length(len(ids), server.config.max_prompt_tokens)
        return len(ids), model.score(ids)

    for name in ("logprobs", "priority"):
        if body.get(name) is not None:
            v.integer(body[name], name)
    n_tokens, scores = await server.cpu(work)
    await call.token_latency(n_tokens)
    return web.json_response(
        {
            "scores": [{"total_logprob": total, "n_tokens": n} for total, n in scores],
            "prompt_tokens": n_tokens,
            "model": server.config.model,
        }
    )
