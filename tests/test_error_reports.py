"""Error reports (the debug page, on this machine only) mask the password of
any URL: Django hides settings by name (SECRET, PASS, KEY, ...), and REDIS_URL,
CELERY_BROKER_URL and runserver's copy of DATABASE_URL in request.META are
not such names."""

import sys

from django.test import RequestFactory
from django.views.debug import ExceptionReporter

# Joined, so the page's excerpt of this file's source does not spell it.
PASSWORD = "-".join(["hunter2", "not", "for", "pages"])


def _debug_page(request):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return ExceptionReporter(request, *sys.exc_info()).get_traceback_html()


def test_the_debug_page_masks_passwords_in_urls(settings):
    redis = f"redis://:{PASSWORD}@redis.example.org:6379/0"
    settings.REDIS_URL = settings.CELERY_BROKER_URL = redis
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": redis}}
    request = RequestFactory().get("/", DATABASE_URL=f"postgres://memscore:{PASSWORD}@db.example.org/memscore")
    page = _debug_page(request)
    assert "RuntimeError" in page
    assert PASSWORD not in page
    # What the URL names is still there, to see which service it was.
    assert "redis://:********************@redis.example.org:6379/0" in page
    assert "postgres://memscore:********************@db.example.org/memscore" in page
