"""Site-wide middleware of memscore's own."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import resolve_url
from django.utils.cache import patch_cache_control
from django.views import csrf
from django_htmx.http import HttpResponseClientRedirect


def private_to_the_user(get_response):
    """Cache-Control: private on every response to a logged-in user that
    does not set its own (a view's no-cache or no-store stays as it is).

    SessionMiddleware's `Vary: Cookie` only asks a shared cache (a proxy, a
    CDN) to key on the cookie; `private` tells it to keep nothing, so one
    user's data pages and exports are never served from a cache to another.
    Django has the decorator (cache_control) but no site-wide way. Static
    files never come here: WhiteNoise answers them earlier in MIDDLEWARE.
    """

    def middleware(request):
        response = get_response(request)
        if not response.has_header("Cache-Control") and request.user.is_authenticated:
            patch_cache_control(response, private=True)
        return response

    return middleware


class LoginRequiredMiddleware(auth_middleware.LoginRequiredMiddleware):
    """Django's, but an htmx request from a user logged out meanwhile (the
    session ended, or they logged out in another tab) is sent to the login
    page as a whole page.

    Django's answer, a redirect, is followed by the browser's XHR itself:
    htmx saw the login page (200) and swapped it into the form that had
    sent the decision. HX-Redirect has htmx load it as a page instead, with
    `next` the page the user was on, not the URL the form posted to.
    """

    def handle_no_permission(self, request, view_func):
        # request.htmx is there though HtmxMiddleware comes later in
        # MIDDLEWARE: process_view runs once every middleware has been called.
        if not request.htmx:
            return super().handle_no_permission(request, view_func)
        return _to_login_page(request, self.get_login_url(view_func), self.get_redirect_field_name(view_func))


def _to_login_page(request, login_url, field_name=REDIRECT_FIELD_NAME):
    """HX-Redirect to the login page, back to the page the user was on."""
    login_url = resolve_url(login_url)
    page = request.htmx.current_url_abs_path  # None from another host
    if page:
        login_url = redirect_to_login(page, login_url, field_name).url
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        messages.warning(request, "You were logged out, so what you sent was not saved. Log in and send it again.")
    return HttpResponseClientRedirect(login_url)


def csrf_failure(request, reason=""):
    """Django's CSRF failure page (403), but an htmx request from a user no
    longer logged in goes to the login page whole, as LoginRequiredMiddleware
    sends it. The CSRF check comes first: a page whose token an earlier
    login in another tab made stale, then logged out there, was refused 403
    for ever, and its "reload" advice was the only way to the login page."""
    if getattr(request, "htmx", False) and not request.user.is_authenticated:
        return _to_login_page(request, settings.LOGIN_URL)
    return csrf.csrf_failure(request, reason)
