"""The client's address behind PROXY_COUNT reverse proxies (for django-axes)."""

import ipaddress

from django.conf import settings


def client_ip(request):
    """The address the outermost of PROXY_COUNT proxies received the request from.

    Each proxy appends the address it received the request from to
    X-Forwarded-For, and a client may put anything before those: counted
    from the right, the PROXY_COUNT-th entry is the last one a client cannot
    forge. With no proxy (0), or a header with fewer entries than proxies (a
    request that did not come through them all), or an entry that is not an
    address, it is the connection's own address, which no header changes.
    """
    remote = request.META.get("REMOTE_ADDR")
    count = settings.PROXY_COUNT
    if not count:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(hops) < count:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-count]))
    except ValueError:
        return remote
