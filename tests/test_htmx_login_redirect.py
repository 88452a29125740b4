"""An htmx request from a user logged out meanwhile (the session ended, or
they logged out in another tab) is answered with HX-Redirect to the login
page (memscore_site.middleware.LoginRequiredMiddleware), so htmx loads it as
a page. Django's own answer, a redirect, was followed by the browser's XHR:
htmx got the login page (200) and swapped it into the form that had sent the
decision. The browser side is in tests/browser/test_htmx_errors.py."""

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PAGE = "/candidates/7/"
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": f"http://testserver{PAGE}"}


def test_it_sends_an_htmx_post_to_the_login_page_whole():
    client = Client()
    response = client.post(reverse("candidate_decide", args=[7]), {"decision": "reject", "comment": "No."}, **HTMX)
    assert response.status_code == 200
    # Back, after logging in, to the page the user was on, not to the URL the form posted to.
    assert response["HX-Redirect"] == f"/login/?next={PAGE}"
    assert not response.has_header("Location")
    assert response.content == b""

    login_page = client.get(response["HX-Redirect"])
    assert "You were logged out, so what you sent was not saved." in login_page.text


def test_a_poll_is_sent_there_without_saying_anything_was_lost():
    client = Client()
    response = client.get(reverse("candidate_detail", args=[7]), **HTMX)
    assert response["HX-Redirect"] == f"/login/?next={PAGE}"
    assert "not saved" not in client.get(response["HX-Redirect"]).text


def test_a_page_of_another_host_is_not_where_it_returns():
    response = Client().post(
        reverse("candidate_decide", args=[7]), HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="https://elsewhere.example/x/"
    )
    assert response["HX-Redirect"] == "/login/"


def test_a_request_without_htmx_is_redirected_as_before():
    response = Client().post(reverse("candidate_decide", args=[7]), {"decision": "approve"})
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/candidates/7/decide/"
    assert not response.has_header("HX-Redirect")


def test_a_logged_in_htmx_request_goes_through(cast):
    response = cast.client_for(cast.reviewer).get(reverse("candidate_list"), **HTMX)
    assert response.status_code == 200
    assert not response.has_header("HX-Redirect")


def test_a_page_open_to_all_stays_open_to_htmx():
    response = Client().get(reverse("favicon"), HTTP_HX_REQUEST="true")
    assert response.status_code == 301
    assert not response.has_header("HX-Redirect")


def test_a_post_with_a_stale_token_after_logging_out_goes_to_the_login_page_too():
    # The CSRF check comes before the login check: logged in again in another
    # tab (a new token), then out, the page's next post was refused 403 for
    # ever (walkthrough).
    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = "x" * 32
    response = client.post(reverse("candidate_decide", args=[7]), {"decision": "approve"},
                           HTTP_X_CSRFTOKEN="y" * 32, **HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/login/?next={PAGE}"
    assert "You were logged out, so what you sent was not saved." in client.get(response["HX-Redirect"]).text


def test_a_stale_token_of_a_logged_in_user_is_still_refused(cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.reviewer)
    client.cookies["csrftoken"] = "x" * 32
    response = client.post(reverse("candidate_decide", args=[7]), {"decision": "approve"},
                           HTTP_X_CSRFTOKEN="y" * 32, **HTMX)
    assert response.status_code == 403
    assert not response.has_header("HX-Redirect")
    assert "CSRF" in response.text
