"""The snapshot API: agents send their context here with a per-agent token.

The token is checked before the body is read: the token alone says which agent
it is (each agent's token hash is its own), so a bogus token costs the server
nothing however large the body it announces, and a wrong token and an unknown
agent get the same 401 (names cannot be enumerated). The snapshot's "agent"
must still name that agent (a 400 otherwise), as the format has always said.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, path, re_path, resolve, reverse
from django.views.decorators.csrf import csrf_exempt

from scoring.importing import SnapshotError, TokenizeError, import_or_find, parse_snapshot_json
from scoring.models import Agent, Snapshot
from scoring.views.api_schema import openapi_schema

TOKEN_HELP = "send Authorization: Bearer <the agent's API token>"
EMPTY_BODY = "snapshot: empty body (send the snapshot's JSON as the request body)"
# Read from a de-chunked stream in pieces of this size, never all at once.
_READ_CHUNK = 64 * 1024


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
    limit = settings.SNAPSHOT_MAX_BYTES
    return _error(
        413,
        f"the body is larger than the server's limit of {limit} bytes (SNAPSHOT_MAX_BYTES)",
        limit=limit,
    )


def _read_to_end(stream, limit):
    """The stream's bytes to its end, or None once they pass `limit`.

    Reads at most limit + 1 bytes (one piece more at worst), whatever the client sends.
    """
    pieces, size = [], 0
    while True:
        piece = stream.read(min(_READ_CHUNK, limit + 1 - size))
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)
        size += len(piece)
        if size > limit:
            return None


def _content_length(request):
    # As Django reads it (HttpRequest's stream is cut there): not a number is 0.
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def _read_body(request):
    """The request's body as bytes, or the error response to give instead.

    Read here, not through request.body, against SNAPSHOT_MAX_BYTES rather
    than Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB, every other page's).
    With a Content-Length (or under ASGI, where Django has the whole body)
    the request's own stream ends with the body: a length over the limit is
    refused before a byte is read. Without one a WSGI request's body is read
    to the end of the input where the server has de-chunked it and ends the
    stream with the body (`wsgi.input_terminated`, which gunicorn sets), and a
    411 where it has not, since the stream is then the raw connection, which
    ends only when the client hangs up. Either way reading stops one byte past
    the limit.
    """
    limit = settings.SNAPSHOT_MAX_BYTES
    environ = request.META
    if environ.get("CONTENT_LENGTH") or "wsgi.input" not in environ:
        if _content_length(request) > limit:
            return _too_large()
        stream = request
    elif environ.get("wsgi.input_terminated"):
        stream = environ["wsgi.input"]
    elif environ.get("HTTP_TRANSFER_ENCODING"):
        return _error(
            411,
            "Length Required: this web server does not pass on a body sent with "
            "Transfer-Encoding (chunked); send a Content-Length header",
        )
    else:
        return b""  # neither header: HTTP says there is no body
    body = _read_to_end(stream, limit)
    return _too_large() if body is None else body


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
        scheme = request.headers.get("Authorization", "").partition(" ")[0]
        if scheme and scheme.lower() != "bearer":
            # Named only by its scheme: what follows it may be a secret.
            return _error(401, f"the Authorization header's scheme must be Bearer, not {scheme[:20]!r}: {TOKEN_HELP}")
        return _error(401, f"missing token: {TOKEN_HELP}")
    agent = _agent_for_token(token)
    if agent is None:
        return _error(401, f"wrong token: no agent has it; {TOKEN_HELP}")

    raw = _read_body(request)
    if isinstance(raw, HttpResponse):
        return raw
    if not raw.strip():
        return _error(400, "invalid snapshot", errors=[EMPTY_BODY])
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
# generator must read it before it has a token. No CSRF check: it changes
# nothing, and a wrong method gets the API's JSON 405, not the HTML 403.
@csrf_exempt
@login_not_required
def api_openapi(request):
    if request.method not in ("GET", "HEAD"):
        response = _error(405, "use GET")
        response["Allow"] = "GET, HEAD"
        return response
    return JsonResponse(openapi_schema())


def _is_endpoint(path_info):
    try:
        return resolve(path_info).url_name in _ENDPOINTS
    except Resolver404:
        return False


# Agents read JSON: a path under /api/ that is no endpoint is a JSON 404, not
# the HTML page (which also set a CSRF cookie), whatever the method and login.
@csrf_exempt
@login_not_required
def api_not_found(request):
    body = {"error": f"no such API path: {request.path}"}
    if request.path_info.endswith("/") and _is_endpoint(request.path_info.rstrip("/")):
        body["hint"] = f"drop the trailing slash: {request.path.rstrip('/')}"
    return JsonResponse(body, status=404)


_ENDPOINTS = ("api_snapshots", "api_openapi")
urlpatterns = [
    path("api/v1/snapshots", api_snapshots, name="api_snapshots"),
    path("api/v1/openapi.json", api_openapi, name="api_openapi"),
    # Last: everything else under /api/.
    re_path(r"^api(?:/.*)?$", api_not_found),
]
