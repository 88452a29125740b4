"""Request sizes: Django's 2.5 MB for every page, SNAPSHOT_MAX_BYTES for snapshots.

A site-wide 200 MiB let anyone without a login make a worker parse a 150 MiB
form body: CsrfViewMiddleware reads request.POST before login or any view. Now
an ordinary page refuses such a body from its Content-Length alone, while the
API reads its own body, and the upload form its spilled file, against the
snapshot limit.
"""

import io

from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from scoring.models import Snapshot
from tests.snapshot_data import as_bytes, snapshot_doc

URL = "/api/v1/snapshots"
DJANGO_DEFAULT = 2621440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB
BIGGER = 3 * 1024 * 1024


class _Counting(io.RawIOBase):
    """An endless body that counts what was read of it."""

    def __init__(self):
        self.read_bytes = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), 1000)
        buffer[:n] = b"a" * n
        self.read_bytes += n
        return n


def _padded(size, **doc):
    """A valid snapshot of exactly `size` bytes (JSON may end in white space)."""
    body = as_bytes(snapshot_doc(token_ids=True, **doc))
    return body + b" " * (size - len(body))


def test_the_site_keeps_djangos_limit_for_form_data():
    assert django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE == DJANGO_DEFAULT
    assert django_settings.FILE_UPLOAD_MAX_MEMORY_SIZE == DJANGO_DEFAULT
    assert django_settings.SNAPSHOT_MAX_BYTES == 50 * 1024 * 1024


def test_a_big_form_post_without_a_login_is_refused_unread(db):
    # What the walkthrough sent: 150 MiB urlencoded to /login/ with a CSRF cookie,
    # which the CSRF check parses before anything else runs.
    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = "a" * 32
    body = _Counting()
    response = client.generic(
        "POST", reverse("login"), **{"wsgi.input": body, "CONTENT_LENGTH": str(150 * 1024 * 1024),
                                     "CONTENT_TYPE": "application/x-www-form-urlencoded"})
    assert response.status_code == 400  # RequestDataTooBig
    assert body.read_bytes == 0


# --- the API --------------------------------------------------------------------

def test_the_api_takes_a_snapshot_bigger_than_djangos_limit(agent):
    body = _padded(BIGGER)
    response = Client().post(URL, body, content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {agent.issue_ingest_token()}")
    assert response.status_code == 201, response.content[:500]
    assert Snapshot.objects.count() == 1


def test_the_api_refuses_a_content_length_over_its_limit_before_reading(agent, settings):
    settings.SNAPSHOT_MAX_BYTES = BIGGER
    body = _Counting()
    response = Client().generic(
        "POST", URL, **{"wsgi.input": body, "CONTENT_LENGTH": str(BIGGER + 1), "CONTENT_TYPE": "application/json",
                        "HTTP_AUTHORIZATION": f"Bearer {agent.issue_ingest_token()}"})
    assert response.status_code == 413
    assert response.json() == {
        "error": f"the body is larger than the server's limit of {BIGGER} bytes (SNAPSHOT_MAX_BYTES)",
        "limit": BIGGER,
    }
    assert body.read_bytes == 0
    assert Snapshot.objects.count() == 0


def test_the_api_takes_a_body_exactly_at_its_limit(agent, settings):
    settings.SNAPSHOT_MAX_BYTES = BIGGER
    token = agent.issue_ingest_token()
    over = Client().post(URL, _padded(BIGGER + 1), content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {token}")
    assert over.status_code == 413
    at = Client().post(URL, _padded(BIGGER), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert at.status_code == 201, at.content[:500]


# --- the upload form ------------------------------------------------------------

def _upload(cast, agent, content):
    client = cast.client_for(cast.operator)
    url = reverse("snapshot_upload", args=[agent.pk])
    return client.post(url, {"file": SimpleUploadedFile("snapshot.json", content, content_type="application/json")})


def test_the_upload_form_takes_a_file_bigger_than_djangos_limit(cast, offline_agent):
    response = _upload(cast, offline_agent, _padded(BIGGER))
    snapshot = Snapshot.objects.get()
    assert response.status_code == 302 and response.url == reverse("snapshot_detail", args=[snapshot.pk])


def test_the_upload_form_refuses_a_file_over_the_snapshot_limit(cast, offline_agent, settings):
    settings.SNAPSHOT_MAX_BYTES = BIGGER
    response = _upload(cast, offline_agent, _padded(BIGGER + 1))
    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [
        f"The file is {BIGGER + 1:,} bytes, larger than the server's limit of {BIGGER:,} bytes (SNAPSHOT_MAX_BYTES)."
    ]
    assert Snapshot.objects.count() == 0
    assert _upload(cast, offline_agent, _padded(BIGGER)).status_code == 302
