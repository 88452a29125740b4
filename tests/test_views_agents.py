"""Agent pages: list, create, edit, detail, API tokens; roles, CSRF, and the secret key."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scoring.models import Activity, Agent, ScoringRun, Snapshot
from scoring.models.agents import DEFAULT_MEMORY_TEMPLATE, DEFAULT_MESSAGE_TEMPLATE
from scoring.models.runs import Mode, RunStatus

SECRET = "sk-live-SECRET-never-show-4471"


@pytest.fixture
def poc(db):
    return Agent.objects.create(
        name="poc", base_url="http://127.0.0.1:8765/v1", model="memscore-ref", api_key=SECRET
    )


def _valid_post(**overrides):
    data = {
        "name": "helper",
        "base_url": "http://gpu-1.example.net:8000/v1",
        "model": "qwen-32b",
        "backend": "memscore",
        "priority": "",
        "api_key": "",
        "api_key_env": "",
        "message_template": "<|im_start|>{role}\n{text}<|im_end|>\n",
        "memory_template": "<|im_start|>memory\n[{key}]\n{text}<|im_end|>\n",
        "prefix_ids": "[]",
        "end_of_turn": "<|im_end|>",
        "score_concurrency": 8,
        "score_shards": 2,
        "request_timeout": 120,
        "incremental_enabled": "on",
        "incremental_max_age": 3600,
        "incremental_response_window": 20,
        "incremental_batch": 10,
        "weight_alpha": 0.3,
        "finetune_count": 200,
        "finetune_min_divergence": 1.0,
        "required_approvals": 2,
        "training_target": "train",
    }
    data.update(overrides)
    return data


def _snapshot(agent, when="2026-11-20T12:00:00Z"):
    return Snapshot.objects.create(agent=agent, taken_at=when, source=Snapshot.Source.API)


# --- list ---------------------------------------------------------------------

def test_it_lists_agents_with_their_counts(cast, poc):
    _snapshot(poc, "2026-11-19T12:00:00Z")
    latest = _snapshot(poc, "2026-11-20T12:00:00Z")
    poc.memories.create(key="people/alice")
    ScoringRun.objects.create(agent=poc, snapshot=latest, mode=Mode.FULL, status=RunStatus.RUNNING)
    ScoringRun.objects.create(agent=poc, snapshot=latest, mode=Mode.FULL, status=RunStatus.SUCCEEDED)

    response = cast.client_for(cast.viewer).get(reverse("agent_list"))
    assert response.status_code == 200
    row = response.context["agents"].get(pk=poc.pk)
    assert (row.memory_count, row.snapshot_count, row.active_run_count) == (1, 2, 1)
    assert row.latest_snapshot_id == latest.pk
    assert reverse("snapshot_detail", args=[latest.pk]) in response.content.decode()


def test_it_lists_agents_in_a_constant_number_of_queries(cast, poc, django_assert_num_queries):
    client = cast.client_for(cast.viewer)
    client.get(reverse("agent_list"))  # warm the session and permission caches

    def queries_for_page():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("agent_list")).status_code == 200
        return len(ctx.captured_queries)

    one = queries_for_page()
    for i in range(6):
        other = Agent.objects.create(name=f"agent-{i}", base_url="http://x:1/v1", model="m")
        snap = _snapshot(other)
        other.memories.create(key="k")
        ScoringRun.objects.create(agent=other, snapshot=snap, mode=Mode.FULL)
    assert queries_for_page() == one


def test_it_refuses_the_list_to_an_outsider(cast, poc):
    assert cast.client_for(cast.outsider).get(reverse("agent_list")).status_code == 403


def test_it_sends_anonymous_visitors_to_log_in(poc):
    response = Client().get(reverse("agent_list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- create -------------------------------------------------------------------

def test_it_lets_an_operator_create_an_agent(cast):
    client = cast.client_for(cast.operator)
    assert client.get(reverse("agent_create")).status_code == 200
    response = client.post(reverse("agent_create"), _valid_post(api_key="sk-new-key"))
    agent = Agent.objects.get(name="helper")
    assert response.status_code == 302 and response["Location"] == reverse("agent_detail", args=[agent.pk])
    assert (agent.model, agent.score_concurrency, agent.score_shards, agent.required_approvals) == (
        "qwen-32b", 8, 2, 2
    )
    assert agent.api_key == "sk-new-key"
    assert agent.created_by == cast.operator
    activity = Activity.objects.get(verb="created agent")
    assert activity.actor == cast.operator and activity.target_id == str(agent.pk)


@pytest.mark.parametrize("who", ["viewer", "reviewer", "outsider"])
def test_it_refuses_creation_without_the_role(cast, who):
    client = cast.client_for(getattr(cast, who))
    assert client.get(reverse("agent_create")).status_code == 403
    assert client.post(reverse("agent_create"), _valid_post()).status_code == 403
    assert not Agent.objects.exists()


def test_it_shows_field_errors_and_creates_nothing(cast, poc):
    response = cast.client_for(cast.operator).post(
        reverse("agent_create"),
        _valid_post(name="poc", memory_template="[{name}] {text}", score_concurrency=0, api_key=SECRET),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "name" in errors and "memory_template" in errors and "score_concurrency" in errors
    assert Agent.objects.count() == 1
    # A key typed into a form with errors is not sent back in the page.
    assert SECRET not in response.content.decode()


# --- edit ---------------------------------------------------------------------

def test_it_keeps_the_key_when_the_field_is_left_blank(cast, poc):
    response = cast.client_for(cast.operator).post(
        reverse("agent_edit", args=[poc.pk]), _valid_post(name="poc", base_url=poc.base_url, api_key="", model="bigger")
    )
    assert response.status_code == 302
    poc.refresh_from_db()
    assert (poc.model, poc.api_key, poc.name) == ("bigger", SECRET, "poc")
    activity = Activity.objects.get(verb="changed agent")
    assert "model" in activity.detail["fields"] and SECRET not in str(activity.detail)
    assert activity.detail["changes"]["model"].endswith("→ bigger")


def test_a_new_key_is_logged_as_changed_never_its_value(cast, poc):
    cast.client_for(cast.operator).post(reverse("agent_edit", args=[poc.pk]), _valid_post(name="poc", api_key="sk-new"))
    activity = Activity.objects.get(verb="changed agent")
    assert activity.detail["changes"]["api_key"] == "changed"
    assert "sk-new" not in str(activity.detail) and SECRET not in str(activity.detail)


def test_it_replaces_or_removes_the_key(cast, poc):
    client = cast.client_for(cast.operator)
    client.post(reverse("agent_edit", args=[poc.pk]), _valid_post(name="poc", api_key="sk-rotated"))
    poc.refresh_from_db()
    assert poc.api_key == "sk-rotated"
    client.post(reverse("agent_edit", args=[poc.pk]), _valid_post(name="poc", clear_api_key="on"))
    poc.refresh_from_db()
    assert poc.api_key == ""
    assert "sk-rotated" not in str(list(Activity.objects.values_list("detail", flat=True)))
    # With no key stored there is nothing to remove: the form does not offer it.
    page = client.get(reverse("agent_edit", args=[poc.pk])).text
    assert "No key is stored." in page and 'name="clear_api_key"' not in page


def test_it_does_not_rename_an_agent(cast, poc):
    cast.client_for(cast.operator).post(reverse("agent_edit", args=[poc.pk]), _valid_post(name="renamed"))
    poc.refresh_from_db()
    assert poc.name == "poc"


@pytest.mark.parametrize("who", ["viewer", "reviewer"])
def test_it_refuses_edits_without_the_role(cast, poc, who):
    client = cast.client_for(getattr(cast, who))
    assert client.get(reverse("agent_edit", args=[poc.pk])).status_code == 403
    response = client.post(reverse("agent_edit", args=[poc.pk]), _valid_post(name="poc", model="hacked"))
    assert response.status_code == 403
    poc.refresh_from_db()
    assert poc.model == "memscore-ref" and poc.api_key == SECRET


# --- detail and the secret key --------------------------------------------------

def test_it_shows_the_agent_with_its_snapshots(cast, poc):
    snapshot = _snapshot(poc)
    response = cast.client_for(cast.viewer).get(reverse("agent_detail", args=[poc.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert reverse("snapshot_detail", args=[snapshot.pk]) in html
    assert reverse("memory_list", args=[poc.pk]) in html
    assert ">set<" in html
    # A viewer gets neither the upload link, the edit link nor the token button.
    assert reverse("snapshot_upload", args=[poc.pk]) not in html
    assert reverse("agent_token", args=[poc.pk]) not in html


def test_it_says_none_without_a_key(cast, poc):
    poc.api_key = ""
    poc.save()
    html = cast.client_for(cast.viewer).get(reverse("agent_detail", args=[poc.pk])).content.decode()
    assert _api_key_line(html) == "none calls go without a key"


def _api_key_line(html):
    line = re.search(r'<div id="api-key"><dt>API key</dt><dd>(.*?)</dd></div>', html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", line).split())


VAR = "MEMSCORE_AGENT_KEY_POC"


@pytest.mark.parametrize("stored, env, value, operator_reads, viewer_reads", [
    (SECRET, "", None, "set stored in memscore", "set stored in memscore"),
    ("", VAR, "sk-env", f"set read from ${VAR}", "set read from the environment"),
    (SECRET, VAR, "sk-env", f"set read from ${VAR}; the stored key is kept but not sent",
     "set read from the environment; the stored key is kept but not sent"),
    # The walkthrough's "not set from $MEMSCORE_AGENT_KEY_POC".
    ("", VAR, None, f"not sent ${VAR} is named but not set in this server's environment: calls go without a key.",
     "not sent The variable it is read from is named but not set in this server's environment: "
     "calls go without a key."),
    (SECRET, VAR, "", f"not sent ${VAR} is named but empty in this server's environment: calls go without a key.",
     "not sent The variable it is read from is named but empty in this server's environment: "
     "calls go without a key."),
    ("", "DATABASE_URL", "postgres://db", "not sent $DATABASE_URL is named but is not one memscore may read "
     "(the administrator's prefix): calls go without a key.",
     "not sent The variable it is read from is named but is not one memscore may read (the administrator's "
     "prefix): calls go without a key."),
    ("", "", None, "none calls go without a key", "none calls go without a key"),
])
def test_the_api_key_line_says_where_the_key_comes_from(cast, poc, monkeypatch, stored, env, value,
                                                         operator_reads, viewer_reads):
    if env:
        monkeypatch.delenv(env, raising=False)
        if value is not None:
            monkeypatch.setenv(env, value)
    Agent.objects.filter(pk=poc.pk).update(api_key=stored, api_key_env=env)  # a row saved by hand, for the last
    url = reverse("agent_detail", args=[poc.pk])

    assert _api_key_line(cast.client_for(cast.operator).get(url).content.decode()) == operator_reads
    viewer = cast.client_for(cast.viewer).get(url).content.decode()
    assert _api_key_line(viewer) == viewer_reads
    assert not env or env not in viewer
    # A missing key is a warning, not a muted aside.
    assert ('class="badge warn"' in viewer or 'class="badge bad"' in viewer) == viewer_reads.startswith("not sent")


def test_it_shows_every_review_setting(cast, poc):
    url = reverse("agent_detail", args=[poc.pk])
    html = cast.client_for(cast.viewer).get(url).content.decode()
    assert "<dt>Rejections that reject</dt><dd>1</dd>" in html and "<dt>Blind review</dt><dd>off</dd>" in html

    poc.required_approvals, poc.rejections_to_settle, poc.blind_review = 3, 2, True
    poc.save()
    html = cast.client_for(cast.viewer).get(url).content.decode()
    assert "<dt>Approvals needed</dt><dd>3</dd>" in html
    assert "<dt>Rejections that reject</dt><dd>2</dd>" in html
    assert re.search(r"<dt>Blind review</dt><dd>on <span[^>]*>\(others' decisions hidden until one's own\)", html)


def test_it_never_renders_the_api_key(cast, poc):
    _snapshot(poc)
    client = cast.client_for(cast.operator)
    pages = [
        client.get(reverse("agent_list")),
        client.get(reverse("agent_detail", args=[poc.pk])),
        client.get(reverse("agent_edit", args=[poc.pk])),
        client.get(reverse("agent_create")),
        # An edit with errors re-renders the form with everything posted.
        client.post(reverse("agent_edit", args=[poc.pk]), _valid_post(name="poc", base_url="not a url")),
        _issue(client, poc)[1],
    ]
    for response in pages:
        assert response.status_code == 200, response.request["PATH_INFO"]
        assert SECRET not in response.content.decode(), response.request["PATH_INFO"]


def test_it_refuses_the_detail_to_an_outsider(cast, poc):
    assert cast.client_for(cast.outsider).get(reverse("agent_detail", args=[poc.pk])).status_code == 403


# --- API tokens -----------------------------------------------------------------

# What the page's checkbox sends: a new token may revoke the current one.
REVOKE = {"revoke": "yes"}


def _issue(client, agent):
    """POST for a token, follow the redirect: (the POST's response, the page)."""
    posted = client.post(reverse("agent_token", args=[agent.pk]), REVOKE)
    return posted, client.get(posted["Location"])


def _shown_token(html):
    return re.search(r'<pre class="text box" id="token">([^<]+)</pre>', html).group(1)


def test_it_issues_a_token_shown_once(cast, poc):
    client = cast.client_for(cast.operator)
    posted, response = _issue(client, poc)
    # Post/Redirect/Get: the token is in neither the redirect nor its URL.
    assert posted.status_code == 302 and posted["Location"] == reverse("agent_token", args=[poc.pk])
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    token = _shown_token(html)
    assert token not in posted["Location"] and token not in posted.content.decode()
    poc.refresh_from_db()
    assert poc.check_ingest_token(token)
    assert f"Authorization: Bearer {token}" in html and "http://testserver/api/v1/snapshots" in html
    assert Activity.objects.filter(verb="issued API token for", actor=cast.operator).count() == 1
    assert token not in str(Activity.objects.values_list("detail", flat=True)[0])
    # The detail page never shows it again.
    assert token not in client.get(reverse("agent_detail", args=[poc.pk])).content.decode()
    # A second token replaces the first.
    _issue(client, poc)
    poc.refresh_from_db()
    assert not poc.check_ingest_token(token)


def test_reloading_the_token_page_issues_nothing_and_says_so(cast, poc):
    client = cast.client_for(cast.operator)
    _, shown = _issue(client, poc)
    token = _shown_token(shown.content.decode())
    poc.refresh_from_db()
    issued_hash = poc.ingest_token_hash

    # A reload (or going back) is a GET of the same page: no new token.
    again = client.get(reverse("agent_token", args=[poc.pk]))
    html = again.content.decode()
    assert again.status_code == 200 and again["Cache-Control"] == "no-store"
    assert token not in html and 'id="token"' not in html
    said = _token_page_text(html)
    assert "poc has an API token, issued earlier. It is not shown again" in said
    assert "If the agent does not have that token, issue a new one; this revokes it" in said
    assert 'action="{}"'.format(reverse("agent_token", args=[poc.pk])) in html  # how to issue a new one
    poc.refresh_from_db()
    assert poc.ingest_token_hash == issued_hash and poc.check_ingest_token(token)
    assert Activity.objects.filter(verb="issued API token for").count() == 1


def test_a_token_is_shown_only_for_its_own_agent(cast, poc):
    other = Agent.objects.create(name="other", base_url="http://127.0.0.1:8765/v1", model="m")
    client = cast.client_for(cast.operator)
    client.post(reverse("agent_token", args=[poc.pk]), REVOKE)
    html = client.get(reverse("agent_token", args=[other.pk])).content.decode()
    assert 'id="token"' not in html and "other has no API token yet" in html


def _token_page_text(html):
    """The words of the token page's card when no token is shown, spaces collapsed."""
    card = re.search(r'<div class="card" id="token-state" data-state="\w+">(.*?)</div>', html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", card).split())


def _token_state(html):
    return re.search(r'id="token-state" data-state="(\w+)"', html).group(1)


# The page in each of its states: says what is true of that one, and nothing of the others.

def test_the_token_page_of_an_agent_that_never_had_a_token(cast, poc):
    html = cast.client_for(cast.operator).get(reverse("agent_token", args=[poc.pk])).content.decode()

    said = _token_page_text(html)
    assert _token_state(html) == "none"
    assert said.startswith("poc has no API token yet: the agent needs one to send snapshots.")
    # Nothing was shown, and there is nothing to revoke.
    for untrue in ("no longer shown", "copy", "revoke", "still works", "expired"):
        assert untrue not in said.lower(), untrue
    assert "Issue an API token" in said and 'class="danger"' not in html


def test_the_token_page_of_an_agent_whose_token_was_issued_elsewhere(cast, poc):
    # Issued earlier, not in this session (manage.py add_agent, another person's page).
    poc.issue_ingest_token()
    html = cast.client_for(cast.operator).get(reverse("agent_token", args=[poc.pk])).content.decode()

    said = _token_page_text(html)
    assert _token_state(html) == "issued"
    assert "poc has an API token, issued earlier. It is not shown again" in said
    # Whoever reads this may never have seen it.
    assert "If the agent does not have that token, issue a new one; this revokes it" in said
    assert "did not copy" not in said and "expired" not in said
    assert "Issue a new API token (revokes the current one)" in said


def test_a_first_token_replaces_none_and_a_second_says_it_replaces_one(cast, poc):
    client = cast.client_for(cast.operator)
    first = _issue(client, poc)[1].content.decode()
    assert _shown_token(first) and "replaces" not in first and "previous token" not in first

    second = _issue(client, poc)[1].content.decode()
    assert "It replaces the token poc had, which no longer works: the agent must use this one." in second


def test_a_token_expired_before_it_was_shown_and_then_the_reload(cast, poc):
    client = cast.client_for(cast.operator)
    client.post(reverse("agent_token", args=[poc.pk]), REVOKE)
    _age_waiting_tokens(client, 5 * 60 + 1)

    html = client.get(reverse("agent_token", args=[poc.pk])).content.decode()
    said = _token_page_text(html)
    assert _token_state(html) == "expired"
    assert "expired before this page showed it" in said
    assert "That token still works, but no one can see it again." in said
    assert "To give the agent a token, issue a new one; this revokes the one no one saw." in said
    assert "did not copy" not in said and said.lower().count("issue a new one") == 1

    # The reload: no one saw that token, and the page does not say anyone did.
    html = client.get(reverse("agent_token", args=[poc.pk])).content.decode()
    said = _token_page_text(html)
    assert _token_state(html) == "issued"
    assert "If the agent does not have that token" in said and "did not copy" not in said


def test_a_token_expired_unseen_and_replaced_since_in_another_session(cast, poc):
    mine, theirs = cast.client_for(cast.operator), cast.client_for(cast.operator)  # two browsers
    mine.post(reverse("agent_token", args=[poc.pk]), REVOKE)
    _age_waiting_tokens(mine, 5 * 60 + 1)
    _issue(theirs, poc)

    html = mine.get(reverse("agent_token", args=[poc.pk])).content.decode()
    said = _token_page_text(html)
    assert _token_state(html) == "expired"
    assert "That token no longer works either: another was issued since." in said
    assert "still works" not in said
    assert "If the agent does not have the token issued since, issue a new one" in said


def _age_waiting_tokens(client, seconds):
    """Make the tokens waiting in the client's session `seconds` older."""
    session = client.session
    for key, value in session.items():
        if key.startswith("memscore:new-token:"):
            session[key] = {**value, "issued": value["issued"] - seconds}
    session.save()


def _waiting_tokens(client):
    return {k: v for k, v in client.session.items() if k.startswith("memscore:new-token:")}


def test_a_token_waits_for_its_page_in_a_short_lived_cookie_never_in_the_session(cast, poc):
    client = cast.client_for(cast.operator)
    posted = client.post(reverse("agent_token", args=[poc.pk]), REVOKE)
    cookie = posted.cookies[f"memscore-new-token-{poc.pk}"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["max-age"] == 300
    assert cookie["path"] == reverse("agent_token", args=[poc.pk])
    waiting = _waiting_tokens(client)
    assert [set(v) for v in waiting.values()] == [{"hash", "issued", "replaced"}]
    shown = client.get(reverse("agent_token", args=[poc.pk]))
    token = _shown_token(shown.content.decode())
    # The session store never held it (a redirect not followed left it there for two weeks).
    assert token not in str(dict(client.session.items())) and token not in str(waiting)
    # Shown, it is gone from the browser too.
    assert shown.cookies[f"memscore-new-token-{poc.pk}"].value == ""


def test_a_token_not_fetched_in_time_is_not_shown_and_says_so(cast, poc):
    # The redirect after the POST was never followed (a closed tab, a lost
    # connection): the token waits in a cookie for 5 minutes, no longer.
    client = cast.client_for(cast.operator)
    client.post(reverse("agent_token", args=[poc.pk]), REVOKE)
    token = client.cookies[f"memscore-new-token-{poc.pk}"].value.split(":")[0]
    assert poc.__class__.objects.get(pk=poc.pk).check_ingest_token(token)
    _age_waiting_tokens(client, 5 * 60 + 1)

    response = client.get(reverse("agent_token", args=[poc.pk]))

    html = response.content.decode()
    assert token not in html and 'id="token"' not in html
    assert "expired" in html and "5 minutes" in html
    assert 'action="{}"'.format(reverse("agent_token", args=[poc.pk])) in html  # how to issue a new one
    assert _waiting_tokens(client) == {}


def test_a_token_fetched_within_the_time_is_shown_once(cast, poc):
    client = cast.client_for(cast.operator)
    client.post(reverse("agent_token", args=[poc.pk]), REVOKE)
    _age_waiting_tokens(client, 4 * 60)

    token = _shown_token(client.get(reverse("agent_token", args=[poc.pk])).content.decode())

    poc.refresh_from_db()
    assert poc.check_ingest_token(token) and _waiting_tokens(client) == {}


def test_a_stale_token_of_another_agent_is_dropped_too(cast, poc):
    other = Agent.objects.create(name="other", base_url="http://127.0.0.1:8765/v1", model="m")
    client = cast.client_for(cast.operator)
    client.post(reverse("agent_token", args=[other.pk]), REVOKE)
    _age_waiting_tokens(client, 5 * 60 + 1)

    _issue(client, poc)

    assert _waiting_tokens(client) == {}


def test_it_refuses_tokens_to_a_viewer(cast, poc):
    before = poc.issue_ingest_token()
    client = cast.client_for(cast.viewer)
    assert client.post(reverse("agent_token", args=[poc.pk])).status_code == 403
    assert client.get(reverse("agent_token", args=[poc.pk])).status_code == 403
    poc.refresh_from_db()
    assert poc.check_ingest_token(before)


# --- CSRF -----------------------------------------------------------------------

def test_it_enforces_csrf_on_every_post(cast, poc):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.operator)
    token_hash = poc.ingest_token_hash
    assert client.post(reverse("agent_create"), _valid_post()).status_code == 403
    assert client.post(reverse("agent_edit", args=[poc.pk]), _valid_post(name="poc", model="x")).status_code == 403
    assert client.post(reverse("agent_token", args=[poc.pk])).status_code == 403
    poc.refresh_from_db()
    assert not Agent.objects.filter(name="helper").exists()
    assert poc.model == "memscore-ref" and poc.ingest_token_hash == token_hash

    # With the token from the form, the same post goes through.
    page = client.get(reverse("agent_create")).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(reverse("agent_create"), {**_valid_post(), "csrfmiddlewaretoken": csrf})
    assert response.status_code == 302 and Agent.objects.filter(name="helper").exists()


def test_it_keeps_the_templates_byte_for_byte(cast, poc):
    client = cast.client_for(cast.operator)
    page = client.get(reverse("agent_edit", args=[poc.pk])).content.decode()
    # In a textarea: a one-line input would drop the newlines.
    assert re.search(r'<textarea name="message_template"[^>]*>\n&lt;\|im_start\|&gt;\{role\}\n\{text\}', page)
    # Browsers send textarea line breaks as CRLF.
    response = client.post(reverse("agent_edit", args=[poc.pk]), _valid_post(
        name="poc",
        message_template=DEFAULT_MESSAGE_TEMPLATE.replace("\n", "\r\n"),
        memory_template=DEFAULT_MEMORY_TEMPLATE.replace("\n", "\r\n"),
    ))
    assert response.status_code == 302
    poc.refresh_from_db()
    assert poc.message_template == DEFAULT_MESSAGE_TEMPLATE
    assert poc.memory_template == DEFAULT_MEMORY_TEMPLATE


# --- server settings (issue 8) ------------------------------------------------

def test_it_saves_the_server_api_and_chat_template_settings(cast):
    client = cast.client_for(cast.operator)
    page = client.get(reverse("agent_create")).content.decode()
    assert "vLLM" in page and "--scheduling-policy priority" in page and "BOS" in page
    response = client.post(reverse("agent_create"), _valid_post(
        backend="vllm", base_url="http://gpu-1:8000", priority="-2", prefix_ids="[1]",
        end_of_turn=" <|eot_id|> ", training_target="none",
    ))
    assert response.status_code == 302
    agent = Agent.objects.get(name="helper")
    assert (agent.backend, agent.base_url, agent.priority) == ("vllm", "http://gpu-1:8000", -2)
    assert (agent.prefix_ids, agent.end_of_turn, agent.training_target) == ([1], "<|eot_id|>", "none")


def test_a_blank_prefix_is_no_prefix_and_a_blank_priority_sends_none(cast):
    client = cast.client_for(cast.operator)
    client.post(reverse("agent_create"), _valid_post(prefix_ids="", priority=""))
    agent = Agent.objects.get(name="helper")
    assert (agent.prefix_ids, agent.priority) == ([], None)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"prefix_ids": '["bos"]'}, "prefix_ids"),
        ({"prefix_ids": "{}"}, "prefix_ids"),
        ({"end_of_turn": "  "}, "end_of_turn"),
        ({"backend": "tgi"}, "backend"),
        ({"training_target": "lora"}, "training_target"),
    ],
)
def test_it_refuses_bad_server_settings(cast, overrides, field):
    response = cast.client_for(cast.operator).post(reverse("agent_create"), _valid_post(**overrides))
    assert response.status_code == 200 and field in response.context["form"].errors
    assert not Agent.objects.exists()


def test_settings_added_later_keep_the_agents_value_when_not_sent(cast, poc):
    # A saved page or a client from before these fields existed leaves them out.
    poc.training_context, poc.score_batch_tokens, poc.rejections_to_settle = "without_memories", 4096, 2
    poc.save()
    client = cast.client_for(cast.operator)
    r = client.post(reverse("agent_edit", args=[poc.pk]), _valid_post(name=poc.name, model="other-model"))
    assert r.status_code == 302, r.content[:800]
    poc.refresh_from_db()
    assert (poc.model, poc.training_context, poc.score_batch_tokens, poc.rejections_to_settle) == (
        "other-model", "without_memories", 4096, 2)

    r = client.post(reverse("agent_edit", args=[poc.pk]), _valid_post(
        name=poc.name, training_context="as_scored", score_batch_tokens=0))
    assert r.status_code == 302
    poc.refresh_from_db()
    assert (poc.training_context, poc.score_batch_tokens) == ("as_scored", 0)
    r = client.post(reverse("agent_edit", args=[poc.pk]), _valid_post(name=poc.name, training_context="sometimes"))
    assert r.status_code == 200 and "training_context" in r.context["form"].errors


def test_the_form_says_fine_tune_as_every_other_page_does(cast, poc):
    # Field names (finetune_count) are identifiers; the words a person reads are "fine-tune".
    client = cast.client_for(cast.operator)
    for url in (reverse("agent_create"), reverse("agent_edit", args=[poc.pk])):
        page = client.get(url).content.decode()
        assert not re.search(r"finetune\b(?!_)", page, re.I), url
        assert "the re-score after fine-tuning shows the gap closing" in page


@pytest.mark.parametrize("key, kind", [
    ("sk-line\nbreak", "line breaks"),
    ("sk-tab\tinside", "spaces or tabs"),
    ("sk-bell\x07", "control characters"),
    ("sk-nbsp\u00a0é", "non-ASCII characters"),
])
def test_it_refuses_a_key_no_http_header_can_carry_without_echoing_it(cast, poc, key, kind):
    response = cast.client_for(cast.operator).post(
        reverse("agent_edit", args=[poc.pk]), _valid_post(name="poc", api_key=key))
    assert response.status_code == 200
    assert kind in response.text and "an HTTP header cannot carry" in response.text
    assert key not in response.text and key.split()[0] not in response.text
    poc.refresh_from_db()
    assert poc.api_key == SECRET


def test_it_refuses_a_name_of_digits_only(cast):
    response = cast.client_for(cast.operator).post(reverse("agent_create"), _valid_post(name="7"))
    assert response.status_code == 200
    assert "A name of digits only reads as another agent&#x27;s id" in response.text
    assert not Agent.objects.filter(name="7").exists()


def test_prefix_ids_that_are_not_json_get_the_words_of_a_wrong_shape(cast, poc):
    for value in ("[1, x]", "{}"):
        response = cast.client_for(cast.operator).post(
            reverse("agent_edit", args=[poc.pk]), _valid_post(name="poc", prefix_ids=value))
        assert "Enter a JSON list of token ids (non-negative integers), e.g. [1], or []." in response.text, value
        assert "Enter a valid JSON." not in response.text


def test_every_setting_says_what_it_does(cast, poc):
    page = cast.client_for(cast.operator).get(reverse("agent_edit", args=[poc.pk])).text
    for words in ("sent with every call", "{role} and {text} are replaced", "how many responses after a memory",
                  "how many of the last conversation entries", "to become a candidate",
                  "How many reviewers must approve"):
        assert words in page, words


@pytest.mark.parametrize("backend, target", [("vllm", "none"), ("sglang", "none"), ("memscore", "train")])
def test_a_new_agents_training_target_follows_its_server_api_unless_chosen(cast, backend, target):
    """Walkthrough: a vLLM agent saved with the form's defaults had /train as
    its training target, which a stock vLLM has not (add_agent chose none)."""
    client = cast.client_for(cast.operator)
    page = client.get(reverse("agent_create")).text
    assert "as the server API has it" in page and "/train for memscore&#x27;s, none (export approved" in page
    client.post(reverse("agent_create"), _valid_post(name=f"a-{backend}", backend=backend, training_target=""))
    assert Agent.objects.get(name=f"a-{backend}").training_target == target
    # Chosen, it is kept: a vLLM with a /train of its own.
    client.post(reverse("agent_create"), _valid_post(name=f"b-{backend}", backend=backend, training_target="train"))
    assert Agent.objects.get(name=f"b-{backend}").training_target == "train"


def test_a_new_token_revokes_the_current_one_only_when_asked_to(cast, poc):
    """Walkthrough: one click on "Issue a new API token" revoked the token the
    agent was using. It now takes the box ticked, checked on the server."""
    client = cast.client_for(cast.operator)
    _issue(client, poc)
    poc.refresh_from_db()
    working = poc.ingest_token_hash
    page = client.get(reverse("agent_token", args=[poc.pk])).text
    assert 'name="revoke" value="yes" required' in page
    answer = client.post(reverse("agent_token", args=[poc.pk]), follow=True)
    assert "Nothing was issued: tick “Revoke the current token” to replace it" in answer.text
    poc.refresh_from_db()
    assert poc.ingest_token_hash == working
    assert Activity.objects.filter(verb="issued API token for").count() == 1


def test_the_agent_page_says_background_scorings_age_in_hours(cast, poc):
    # It read "memories older than 21600 s" (walkthrough).
    poc.incremental_enabled, poc.incremental_max_age = True, 21600
    poc.save()
    page = cast.client_for(cast.viewer).get(reverse("agent_detail", args=[poc.pk])).text
    assert "memories not scored for 6 h, " in page and "21600" not in page


def test_duration_reads_as_a_person_would():
    from scoring.templatetags.dates import duration

    assert [duration(s) for s in (45, 90, 120, 5400, 21600, 86400, 172800, None)] == [
        "45 s", "90 s", "2 min", "1 h 30 min", "6 h", "24 h", "2 d", ""]
