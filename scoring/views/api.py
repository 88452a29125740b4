"""The snapshot API: agents send their context here with a per-agent token.

The token is checked before the body is read: the token alone says which agent
it is (each agent's token hash is its own), so a bogus token costs the server
nothing however large the body it announces, and a wrong token and an unknown
agent get the same 401 (names cannot be enumerated). The snapshot's "agent"
must still name that agent (a 400 otherwise), as the format has always said.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt

from scoring.importing import SnapshotError, TokenizeError, import_or_find, parse_snapshot_json
from scoring.models import Agent, Snapshot
from scoring.views.api_schema import openapi_schema

TOKEN_HELP = "send Authorization: Bearer <the agent's API token>"


def _bearer_token(request):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _error(status, message, **extra):
    response = JsonResponse({"error": message, **extra}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="memscore"'
    return response


def _agent_for_token(token):
    """The agent whose API token this is, or None.

    Every agent with a token is compared in constant time through the model's
    own check (agents are tens, not thousands), so the hashing stays in one place.
    """
    if not token:
        return None
    for agent in Agent.objects.exclude(ingest_token_hash=""):
        if agent.check_ingest_token(token):
            return agent
    return None


def _too_large():
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _error(
        413,
        f"the body is larger than the server's limit of {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)",
        limit=limit,
    )


def _created_body(request, snapshot):
    return {
        "id": snapshot.pk,
        "url": request.build_absolute_uri(reverse("snapshot_detail", args=[snapshot.pk])),
        "nodes": snapshot.node_count,
        "memories": snapshot.memory_count,
        "responses": snapshot.response_count,
        "tokens": snapshot.token_count,
    }


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
        return _error(401, f"missing token: {TOKEN_HELP}")
    agent = _agent_for_token(token)
    if agent is None:
        return _error(401, f"wrong token: no agent has it; {TOKEN_HELP}")

    try:
        raw = request.body  # refused from Content-Length alone when over the limit
    except RequestDataTooBig:
        return _too_large()
    try:
        snapshot, created = import_or_find(
            agent, parse_snapshot_json(raw), source=Snapshot.Source.API, actor_name=f"agent:{agent.name}"
        )
    except SnapshotError as e:
        return _error(400, "invalid snapshot", errors=e.errors)
    except TokenizeError as e:
        return _error(502, f"nothing imported: {e}")
    return JsonResponse(_created_body(request, snapshot), status=201 if created else 200)


# The schema is public: it describes the API, holds no data, and a client
# generator must read it before it has a token.
@login_not_required
def api_openapi(request):
    if request.method not in ("GET", "HEAD"):
        response = _error(405, "use GET")
        response["Allow"] = "GET, HEAD"
        return response
    return JsonResponse(openapi_schema())


urlpatterns = [
    path("api/v1/snapshots", api_snapshots, name="api_snapshots"),
    path("api/v1/openapi.json", api_openapi, name="api_openapi"),
]
