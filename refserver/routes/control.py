"""``/v1/_control/*``, served only with --enable-control: tests change the fault
settings and read call counts. Never authenticated, counted, delayed or failed."""

from __future__ import annotations

from aiohttp import web

from .. import validation as v
from ..faults import FaultSettings
from ..server import SERVER
from ..usage import scored_tokens


async def control_faults(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    if request.method == "POST":
        body = await server.read_json(request)
        try:
            settings = FaultSettings.from_mapping(body)
        except ValueError as e:
            raise v.BadRequest(str(e)) from None
        server.faults.replace(settings)
        await server.gate.set_limit(settings.capacity)
    return web.json_response({"faults": server.faults.settings.as_dict()})


async def control_stats(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    statuses: dict[str, int] = {}
    for job in server.trainer.jobs.values():
        statuses[job.status] = statuses.get(job.status, 0) + 1
    return web.json_response(
        {
            "calls": server.faults.calls,
            "total_calls": server.faults.total_calls,
            "max_concurrent_seen": server.max_in_flight,
            "in_flight": server.in_flight,
            "max_served_at_once": server.gate.max_active_seen,
            "train_posts": server.faults.total_calls.get("train", 0),
            "jobs": statuses,
            "scored_tokens": scored_tokens(server),
        }
    )
