"""Security headers on every page: the Content-Security-Policy (no inline
script), framing refused, and with HTTPS on (production) the redirect, HSTS,
secure cookies and the proxy header that says a request came over TLS."""

import pytest
from django.test import Client
from django.urls import reverse

PAGES = ["agent_list", "run_list", "review_queue", "candidate_list", "train_job_list", "activity_list"]


def _directives(response):
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize("name", PAGES)
def test_it_sends_a_policy_without_inline_script_on_every_page(cast, name):
    response = cast.client_for(cast.viewer).get(reverse(name))
    assert response.status_code == 200
    directives = _directives(response)
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_it_sends_the_policy_on_the_login_page_and_the_admin(cast):
    assert "script-src 'self'" in Client().get(reverse("login"))["Content-Security-Policy"]
    assert "script-src 'self'" in Client().get(reverse("admin:login"))["Content-Security-Policy"]


def test_it_has_no_inline_script_in_the_base_page(cast):
    html = cast.client_for(cast.viewer).get(reverse("review_queue")).content.decode()
    assert " onchange=" not in html and " onclick=" not in html
    # Every <script> loads a file, or is a JSON data block.
    for tag in html.split("<script")[1:]:
        opening = tag.split(">", 1)[0]
        assert "src=" in opening or 'type="application/json"' in opening, opening


@pytest.fixture
def https_on(settings):
    """What production sets (README: MEMSCORE_HTTPS on, behind a TLS proxy)."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def test_it_redirects_plain_http_to_https_in_production(https_on):
    response = Client().get(reverse("login"))
    assert response.status_code == 301
    assert response.url.startswith("https://")


def test_it_serves_a_request_the_proxy_marks_as_https(https_on, cast):
    client = Client()
    page = client.get(reverse("login"), HTTP_X_FORWARDED_PROTO="https")
    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == "max-age=31536000"
    response = client.post(reverse("login"), {"username": cast.viewer.username, "password": cast.password},
                           HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"]
    assert page.cookies["csrftoken"]["secure"]


def test_it_keeps_plain_http_for_the_local_site(cast):
    # The tests' settings are a local site's (ALLOWED_HOSTS on loopback).
    response = Client().get(reverse("login"))
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response
