"""Login throttling (django-axes): wrong passwords for one username from one
address are answered as wrong until LOGIN_FAILURE_LIMIT, then refused (429)
for the cool-off, right password included; other users and addresses are
not affected, and a successful login clears the count."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse

LOGIN = reverse("login")


def _try(client, username, password, address="203.0.113.7"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_it_refuses_a_burst_of_wrong_passwords_after_the_limit(cast):
    client = Client()
    answers = [_try(client, cast.viewer.username, f"wrong-{i}").status_code for i in range(30)]
    limit = settings.AXES_FAILURE_LIMIT
    # Wrong-password answers (the form again, 200) until the limit, then 429.
    assert answers[: limit - 1] == [200] * (limit - 1)
    assert set(answers[limit:]) == {429}
    assert answers.count(200) < 30
    # Locked out: even the right password is refused, and no session begins.
    locked = _try(client, cast.viewer.username, cast.password)
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_it_locks_only_that_user_from_that_address(cast):
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        _try(client, cast.viewer.username, f"wrong-{i}")
    assert _try(Client(), cast.reviewer.username, cast.password).status_code == 302
    assert _try(Client(), cast.viewer.username, cast.password, address="198.51.100.9").status_code == 302


def test_it_lets_the_user_in_after_the_cool_off(cast):
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        _try(client, cast.viewer.username, f"wrong-{i}")
    assert _try(client, cast.viewer.username, cast.password).status_code == 429
    # The cool-off passes.
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time
                                 - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    response = _try(client, cast.viewer.username, cast.password)
    assert response.status_code == 302 and response.url == reverse("home")


def test_it_clears_the_count_on_a_successful_login(cast):
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        _try(client, cast.viewer.username, f"wrong-{i}")
    assert _try(client, cast.viewer.username, cast.password).status_code == 302
    assert not AccessAttempt.objects.exists()
    assert _try(Client(), cast.viewer.username, "wrong-again").status_code == 200


@pytest.mark.parametrize("attempt", range(2))
def test_it_starts_each_test_with_no_failed_logins(cast, attempt):
    # Each test's failures roll back with its transaction: the suite's own
    # logins are never locked out by an earlier test.
    assert not AccessAttempt.objects.exists()
    for i in range(settings.AXES_FAILURE_LIMIT):
        _try(Client(), cast.viewer.username, f"wrong-{i}")
    assert AccessAttempt.objects.count() == 1


def test_it_throttles_the_admin_login_too(cast):
    client = Client()
    url = reverse("admin:login")
    answers = [
        client.post(url, {"username": "root", "password": f"wrong-{i}"}, REMOTE_ADDR="203.0.113.7").status_code
        for i in range(settings.AXES_FAILURE_LIMIT + 2)
    ]
    assert answers[-1] == 429


# --- behind a reverse proxy (PROXY_COUNT) -----------------------------------------

PROXY = "10.0.0.2"  # every request's REMOTE_ADDR behind the proxy


def _through_proxy(username, password, forwarded_for):
    return Client().post(LOGIN, {"username": username, "password": password},
                         REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for)


def _lock_out(cast, forwarded_for):
    for i in range(settings.AXES_FAILURE_LIMIT):
        _through_proxy(cast.viewer.username, f"wrong-{i}", forwarded_for)
    assert _through_proxy(cast.viewer.username, cast.password, forwarded_for).status_code == 429


def test_without_a_proxy_count_a_forwarded_for_header_changes_nothing(cast):
    # Anyone can send the header: varying it must not buy more guesses.
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": cast.viewer.username, "password": f"wrong-{i}"},
                    REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    locked = client.post(LOGIN, {"username": cast.viewer.username, "password": cast.password},
                         REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert locked.status_code == 429
    assert AccessAttempt.objects.get().ip_address == "203.0.113.7"


def test_behind_a_proxy_one_client_cannot_lock_out_another(cast, settings):
    settings.PROXY_COUNT = 1
    _lock_out(cast, "203.0.113.7")
    assert AccessAttempt.objects.get().ip_address == "203.0.113.7"
    # The user, from elsewhere through the same proxy, still logs in.
    assert _through_proxy(cast.viewer.username, cast.password, "198.51.100.9").status_code == 302


def test_behind_a_proxy_a_forged_entry_is_not_believed(cast, settings):
    # The client wrote "198.51.100.9"; the proxy appended the address it saw.
    settings.PROXY_COUNT = 1
    for i in range(settings.AXES_FAILURE_LIMIT):
        _through_proxy(cast.viewer.username, f"wrong-{i}", f"198.51.100.{i}, 203.0.113.7")
    assert _through_proxy(cast.viewer.username, cast.password, "192.0.2.1, 203.0.113.7").status_code == 429
    assert AccessAttempt.objects.get().ip_address == "203.0.113.7"
    assert _through_proxy(cast.viewer.username, cast.password, "198.51.100.9").status_code == 302


def test_behind_two_proxies_it_counts_two_from_the_right(cast, settings):
    settings.PROXY_COUNT = 2
    _lock_out(cast, "192.0.2.1, 203.0.113.7, 10.0.0.1")
    assert AccessAttempt.objects.get().ip_address == "203.0.113.7"
    assert _through_proxy(cast.viewer.username, cast.password, "198.51.100.9, 10.0.0.1").status_code == 302


@pytest.mark.parametrize("forwarded_for", ["", "unknown", "203.0.113.7:5555"])
def test_behind_a_proxy_a_header_it_cannot_read_falls_back_to_the_connection(cast, settings, forwarded_for):
    settings.PROXY_COUNT = 1
    _through_proxy(cast.viewer.username, "wrong", forwarded_for)
    assert AccessAttempt.objects.get().ip_address == PROXY
