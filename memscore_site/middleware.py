"""Site-wide middleware of memscore's own."""

from django.utils.cache import patch_cache_control


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
