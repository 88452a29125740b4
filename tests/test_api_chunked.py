"""POST /api/v1/snapshots with `Transfer-Encoding: chunked`: no Content-Length.

Through a real gunicorn (the production server, which de-chunks the body and
says so with wsgi.input_terminated) on the test database, and through Django's
WSGI handler with the input streams other servers give: a de-chunked stream
is read to its end within the size limit, a raw one is a 411.
"""

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from django.test import Client

from scoring.models import Snapshot
from scoring.views.api import EMPTY_BODY
from tests.conftest import BASE_DIR, _database_url
from tests.snapshot_data import as_bytes, snapshot_doc

URL = "/api/v1/snapshots"
LIMIT = 20_000  # gunicorn's SNAPSHOT_MAX_BYTES: a test snapshot is ~1.5 kB
TOO_LARGE = {
    "error": f"the body is larger than the server's limit of {LIMIT} bytes (SNAPSHOT_MAX_BYTES)",
    "limit": LIMIT,
}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn serving memscore on the test database, as the Procfile runs it."""
    with django_db_blocker.unblock():
        database_url = _database_url()
    port = _free_port()
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = dict(os.environ, DATABASE_URL=database_url, SNAPSHOT_MAX_BYTES=str(LIMIT),
               PYTHONUNBUFFERED="1")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "memscore_site.wsgi", "--bind", f"127.0.0.1:{port}",
             "-w", "1"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _push(port, token, body, *, chunked):
    """POST body to gunicorn, chunked (in 1,000-byte pieces, no Content-Length) or not."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if chunked:
        pieces = [body[i:i + 1000] for i in range(0, len(body), 1000)]
        conn.request("POST", URL, body=iter(pieces), headers=headers, encode_chunked=True)
    else:
        conn.request("POST", URL, body=body, headers=headers)
    response = conn.getresponse()
    status, answer = response.status, json.loads(response.read())
    conn.close()
    return status, answer


@pytest.fixture
def live_token(transactional_db, agent):
    return agent.issue_ingest_token()


def test_gunicorn_a_chunked_snapshot_is_imported(gunicorn, live_token):
    status, answer = _push(gunicorn, live_token, as_bytes(snapshot_doc()), chunked=True)
    assert status == 201, answer
    snapshot = Snapshot.objects.get()
    assert answer["id"] == snapshot.pk and answer["tokens"] == snapshot.token_count > 0
    # The same content again, not chunked: the same snapshot.
    status, again = _push(gunicorn, live_token, as_bytes(snapshot_doc()), chunked=False)
    assert (status, again["id"]) == (200, snapshot.pk)


@pytest.mark.parametrize("chunked", [True, False])
def test_gunicorn_the_limit_is_the_same_chunked_or_not(gunicorn, live_token, chunked):
    body = as_bytes(snapshot_doc())
    at_limit = body + b" " * (LIMIT - len(body))  # JSON may end in white space
    assert _push(gunicorn, live_token, at_limit + b" ", chunked=chunked) == (413, TOO_LARGE)
    assert Snapshot.objects.count() == 0
    status, answer = _push(gunicorn, live_token, at_limit, chunked=chunked)
    assert status == 201, answer


def test_gunicorn_an_empty_chunked_body_says_so(gunicorn, live_token):
    status, answer = _push(gunicorn, live_token, b"", chunked=True)
    assert (status, answer) == (400, {"error": "invalid snapshot", "errors": [EMPTY_BODY]})


# --- the WSGI handler, with the input streams servers give ----------------------

class _Endless(io.RawIOBase):
    """A de-chunked stream that never ends: counts what was read of it."""

    def __init__(self):
        self.read_bytes = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), 1000)  # short reads, as a socket gives
        buffer[:n] = b" " * n
        self.read_bytes += n
        return n


def _chunked(client, token, stream, *, terminated):
    extra = {"wsgi.input": stream, "CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked",
             "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": f"Bearer {token}"}
    if terminated:
        extra["wsgi.input_terminated"] = True
    return client.generic("POST", URL, **extra)


def test_a_de_chunked_stream_is_read_to_its_end(agent):
    response = _chunked(Client(), agent.issue_ingest_token(), io.BytesIO(as_bytes(snapshot_doc())),
                        terminated=True)
    assert response.status_code == 201, response.content
    assert Snapshot.objects.count() == 1


def test_an_endless_chunked_body_is_a_413_after_the_limit_and_no_more(agent, settings):
    settings.SNAPSHOT_MAX_BYTES = 50_000
    stream = _Endless()
    response = _chunked(Client(), agent.issue_ingest_token(), stream, terminated=True)
    assert response.status_code == 413
    assert response.json()["limit"] == 50_000
    assert stream.read_bytes == 50_001


def test_a_server_that_does_not_de_chunk_gets_a_411(agent):
    # Django's runserver: the input is the connection, limited to CONTENT_LENGTH (none).
    response = _chunked(Client(), agent.issue_ingest_token(), io.BytesIO(b"5\r\nhello\r\n0\r\n\r\n"),
                        terminated=False)
    assert response.status_code == 411
    assert "send a Content-Length" in response.json()["error"]
    assert Snapshot.objects.count() == 0


def test_an_empty_body_with_a_content_length_says_empty_body(agent):
    response = Client().generic("POST", URL, b"", content_type="application/json",
                                HTTP_AUTHORIZATION=f"Bearer {agent.issue_ingest_token()}")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid snapshot", "errors": [EMPTY_BODY]}
