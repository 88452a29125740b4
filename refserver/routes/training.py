"""``POST /v1/train`` (with an optional Idempotency-Key) and ``GET /v1/train/<job_id>``.
The jobs themselves run in ``refserver.training``."""

from __future__ import annotations

from aiohttp import web

from .. import validation as v
from ..endpoint import Call, endpoint
from ..request_bodies import training_samples
from ..server import RefServer
from ..training import IdempotencyConflict


@endpoint("train")
async def train(request: web.Request, server: RefServer, call: Call) -> web.Response:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= 255:
        raise v.BadRequest("Idempotency-Key header must be 1 to 255 characters")
    body = await server.read_json(request)
    samples, request_hash, truncated = await server.cpu(
        training_samples, body, server.tokenizer.vocab_size, server.engine.train_context_tokens
    )
    # Accepting a job is not its compute (the job pays the latency again as it
    # trains): the latency passes before it is queued, so a client sees it queued.
    await call.pay_latency()
    try:
        job, created = server.trainer.submit(samples, request_hash, key, truncated)
    except IdempotencyConflict as e:
        raise v.BadRequest(str(e), 422) from None
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return web.json_response({"job_id": job.job_id, "status": job.status, "samples": len(job.samples)}, headers=headers)


@endpoint("train_status", gated=False)
async def train_status(request: web.Request, server: RefServer, call: Call) -> web.Response:
    job = server.trainer.jobs.get(request.match_info["job_id"])
    if job is None:
        raise v.BadRequest(f"no training job {request.match_info['job_id']!r}", 404)
    return web.json_response(job.public())
