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
