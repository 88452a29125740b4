"""The snapshot API: agents send their context here with a per-agent token."""

import json

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt

from scoring.importing import (
    SnapshotError,
    TokenizeError,
    import_snapshot,
    parse_snapshot_json,
    validate_snapshot,
)
from scoring.models import Agent, Snapshot


def _bearer_token(request):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _error(status, message, **extra):
    response = JsonResponse({"error": message, **extra}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="memscore"'
    return response


# Token auth, no cookies: a browser's session cannot be ridden, so no CSRF check.
@csrf_exempt
@login_not_required
def api_snapshots(request):
    if request.method != "POST":
        response = _error(405, "use POST")
        response["Allow"] = "POST"
        return response
    token = _bearer_token(request)
    if not token:
        return _error(401, "missing token: send Authorization: Bearer <the agent's API token>")

    try:
        data = parse_snapshot_json(request.body)
        name = data.get("agent") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name:
            # Without a name there is no agent to check the token against: say what is wrong.
            validate_snapshot(data)
    except SnapshotError as e:
        return _error(400, "invalid snapshot", errors=e.errors)

    agent = Agent.objects.filter(name=name).first()
    if agent is None:
        return _error(404, f"no agent named {json.dumps(name)}")
    if not agent.check_ingest_token(token):
        return _error(401, "wrong token for this agent")

    try:
        snapshot = import_snapshot(
            agent, data, source=Snapshot.Source.API, actor_name=f"agent:{agent.name}"
        )
    except SnapshotError as e:
        return _error(400, "invalid snapshot", errors=e.errors)
    except TokenizeError as e:
        return _error(502, f"nothing imported: {e}")
    body = {
        "id": snapshot.pk,
        "url": request.build_absolute_uri(reverse("snapshot_detail", args=[snapshot.pk])),
        "nodes": snapshot.node_count,
        "memories": snapshot.memory_count,
        "responses": snapshot.response_count,
        "tokens": snapshot.token_count,
    }
    return JsonResponse(body, status=201)


urlpatterns = [
    path("api/v1/snapshots", api_snapshots, name="api_snapshots"),
]
