"""Accounts (security walkthrough, defects 3-5): every user changes their own
password, under Django's default password rules; the top bar offers only the
sections the user's role opens; a refused action names the role it needs."""

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import RequestFactory
from django.urls import reverse

from scoring.access import get_agent_for_user, get_candidate_for_user, get_run_for_user
from scoring.models import Agent

SECTIONS = {"agent_list": "Agents", "run_list": "Runs", "review_queue": "Review",
            "train_job_list": "Training", "activity_list": "Activity"}


def test_it_lets_a_user_who_is_not_staff_change_their_password(cast):
    client = cast.client_for(cast.viewer)
    page = client.get(reverse("password_change"))
    assert page.status_code == 200 and b"Change your password" in page.content

    response = client.post(reverse("password_change"), {
        "old_password": cast.password, "new_password1": "veras-new-pw-2026", "new_password2": "veras-new-pw-2026",
    })

    assert response.status_code == 302 and response.url == reverse("password_change_done")
    cast.viewer.refresh_from_db()
    assert cast.viewer.check_password("veras-new-pw-2026")
    # The session is kept: the done page opens without logging in again.
    assert client.get(reverse("password_change_done")).status_code == 200


@pytest.mark.parametrize("new, words", [
    ("password123", "This password is too common."),
    ("48151623420", "This password is entirely numeric."),
    ("vera-example", "The password is too similar to the email address."),
])
def test_it_refuses_a_weak_new_password(cast, new, words):
    response = cast.client_for(cast.viewer).post(reverse("password_change"), {
        "old_password": cast.password, "new_password1": new, "new_password2": new,
    })

    assert response.status_code == 200 and words in response.content.decode()
    cast.viewer.refresh_from_db()
    assert cast.viewer.check_password(cast.password)


def test_it_asks_for_the_old_password(cast):
    response = cast.client_for(cast.viewer).post(reverse("password_change"), {
        "old_password": "not-it-at-all", "new_password1": "veras-new-pw-2026", "new_password2": "veras-new-pw-2026",
    })
    assert response.status_code == 200 and "Your old password was entered incorrectly" in response.content.decode()
    cast.viewer.refresh_from_db()
    assert cast.viewer.check_password(cast.password)


def test_the_password_page_needs_a_login(client, db):
    response = client.get(reverse("password_change"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_validators_are_djangos_defaults_and_the_demos_password_passes():
    assert [v["NAME"].rsplit(".", 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS] == [
        "UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator",
        "NumericPasswordValidator",
    ]
    for name in ("demo", "alice", "bob"):
        validate_password("memscore-demo", User(username=name, email=f"{name}@example.com"))
    with pytest.raises(ValidationError):
        validate_password("12345678")


def top_bar(client):
    page = client.get(reverse("home")).content.decode()
    return page[page.index('<header class="topbar">'):page.index("</header>")]


def test_the_top_bar_offers_only_the_sections_a_role_opens(cast):
    bare = top_bar(cast.client_for(cast.outsider))
    full = top_bar(cast.client_for(cast.viewer))

    for name, label in SECTIONS.items():
        link = f'href="{reverse(name)}"'
        assert link not in bare, label
        assert link in full, label
    for bar in (bare, full):
        assert f'href="{reverse("password_change")}">Password</a>' in bar


def test_a_refused_action_names_the_role_it_needs(cast):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    request = RequestFactory().post("/")
    request.user = cast.outsider

    with pytest.raises(PermissionDenied, match=r"^This needs the operator role\.$"):
        get_agent_for_user(request, agent.pk, "scoring.change_agent")
    with pytest.raises(PermissionDenied, match=r"^This needs the reviewer role\.$"):
        get_candidate_for_user(request, 1, "scoring.review_candidate")
    with pytest.raises(PermissionDenied, match=r"^This needs the viewer role\.$"):
        get_run_for_user(request, 1)
    # A viewer is refused the action, not the page.
    request.user = cast.viewer
    with pytest.raises(PermissionDenied, match=r"^This needs the operator role\.$"):
        get_agent_for_user(request, agent.pk, "scoring.change_agent")
    assert get_agent_for_user(request, agent.pk) == agent
