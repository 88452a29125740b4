"""Runs: list, detail with live progress, start (from the snapshot page) and cancel."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scoring.importing import import_snapshot
from scoring.models import Activity, Agent, ScoreCall, ScoringRun
from scoring.models.runs import Mode, RunStatus
from tests.matrix_data import FAILED, matrix_run
from tests.snapshot_data import snapshot_doc
from tests.test_training_send import broker_at_closed_port

XSS = "<script>alert(1)</script>"


@pytest.fixture
def agent(db):
    # No server is called by these pages; snapshots carry their token ids.
    return Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")


@pytest.fixture
def snapshot(agent):
    return import_snapshot(agent, snapshot_doc(token_ids=True))


@pytest.fixture
def active_run(agent, snapshot, cast):
    run = ScoringRun.objects.create(
        agent=agent, snapshot=snapshot, mode=Mode.FULL, status=RunStatus.RUNNING,
        calls_total=10, calls_done=4, calls_failed=1, tokens_scored=12345,
        created_by=cast.operator, started_at=timezone.now() - timedelta(seconds=50),
    )
    for seq in range(10):
        ScoreCall.objects.create(
            run=run, seq=seq, range_end=8,
            status=ScoreCall.Status.FAILED if seq == 9 else ScoreCall.Status.PENDING,
            error="server said <b>overloaded</b>" if seq == 9 else "",
        )
    return run


def test_it_lists_runs_with_filters(cast, active_run, agent):
    done = matrix_run(agent, [[1.0, 0.0]])
    client = cast.client_for(cast.viewer)

    page = client.get(reverse("run_list"))
    assert page.status_code == 200
    assert f'href="{reverse("run_detail", args=[active_run.pk])}"' in page.text
    assert f'href="{reverse("run_detail", args=[done.pk])}"' in page.text

    page = client.get(reverse("run_list"), {"status": "running"})
    assert f'href="{reverse("run_detail", args=[active_run.pk])}"' in page.text
    assert f'href="{reverse("run_detail", args=[done.pk])}"' not in page.text

    page = client.get(reverse("run_list"), {"mode": "finetune", "agent": agent.pk})
    assert "No runs match these filters" in page.text


def test_it_lists_nothing_for_filter_values_that_do_not_fit(cast, active_run):
    page = cast.client_for(cast.viewer).get(reverse("run_list"), {"agent": "x", "status": "gone", "mode": "old"})
    assert page.status_code == 200
    assert f'href="{reverse("run_detail", args=[active_run.pk])}"' not in page.text
    # ... and says why, rather than seem filtered (tests/test_filter_problems.py has the rule).
    notice = page.text.split('id="filter-errors" role="alert">')[1].split("</div>")[0]
    for said in ("Agent “x”: there is no such agent.", "Status “gone”: not one of the choices.",
                 "Mode “old”: not one of the choices."):
        assert said in notice


def test_it_says_when_no_agent_has_the_id_asked_for(cast, active_run):
    page = cast.client_for(cast.viewer).get(reverse("run_list"), {"agent": "999999"})
    assert "Agent “999999”: there is no such agent." in page.text
    assert f'href="{reverse("run_detail", args=[active_run.pk])}"' not in page.text
    page = cast.client_for(cast.viewer).get(reverse("run_list"), {"agent": str(active_run.agent_id)})
    assert 'id="filter-errors"' not in page.text
    assert f'href="{reverse("run_detail", args=[active_run.pk])}"' in page.text


def test_it_shows_an_empty_state_with_what_to_do(cast):
    page = cast.client_for(cast.viewer).get(reverse("run_list"))
    assert "No scoring runs yet" in page.text
    assert reverse("agent_list") in page.text


def test_it_shows_progress_errors_and_who_started_it(cast, active_run):
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[active_run.pk]))
    assert page.status_code == 200
    text = page.text
    assert "4 done, 1 failed of 10 score calls" in text
    assert "12,345" in text
    assert cast.operator.username in text
    # Polls while active.
    assert f'hx-get="{reverse("run_progress", args=[active_run.pk])}"' in text
    assert 'hx-trigger="every 1s"' in text
    # Failed calls grouped, their error escaped.
    assert "server said &lt;b&gt;overloaded&lt;/b&gt;" in text
    assert "<b>overloaded" not in text
    # Elapsed ~50 s; 5 of 10 calls in 50 s leaves about 50 s.
    assert "0:00:5" in text
    assert "about 0:00:" in text
    # A viewer is not offered the cancel button.
    assert reverse("run_cancel", args=[active_run.pk]) not in text


def test_it_offers_cancel_to_an_operator(cast, active_run):
    page = cast.client_for(cast.operator).get(reverse("run_detail", args=[active_run.pk]))
    assert f'action="{reverse("run_cancel", args=[active_run.pk])}"' in page.text


def test_it_returns_the_progress_fragment_to_htmx(cast, active_run):
    client = cast.client_for(cast.viewer)
    fragment = client.get(reverse("run_progress", args=[active_run.pk]), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="run-progress"')
    assert "<html" not in fragment.text and "topbar" not in fragment.text
    assert 'hx-trigger="every 1s"' in fragment.text


def test_it_stops_polling_once_the_run_ended(cast, active_run):
    ScoringRun.objects.filter(pk=active_run.pk).update(
        status=RunStatus.SUCCEEDED, calls_done=9, finished_at=timezone.now()
    )
    fragment = cast.client_for(cast.viewer).get(
        reverse("run_progress", args=[active_run.pk]), HTTP_HX_REQUEST="true"
    )
    assert "hx-trigger" not in fragment.text and "hx-get" not in fragment.text
    assert "succeeded" in fragment.text
    assert reverse("heatmap", args=[active_run.pk]) in fragment.text


def test_it_redirects_a_plain_progress_request_to_the_page(cast, active_run):
    response = cast.client_for(cast.viewer).get(reverse("run_progress", args=[active_run.pk]))
    assert response.status_code == 302
    assert response.url == reverse("run_detail", args=[active_run.pk])


def test_it_links_a_finetune_run_to_its_candidates(cast, agent, snapshot):
    run = ScoringRun.objects.create(
        agent=agent, snapshot=snapshot, mode=Mode.FINETUNE, status=RunStatus.SUCCEEDED,
        finished_at=timezone.now(), result={"responses": 3, "candidates": 2, "new": [XSS]},
    )
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk]))
    assert "<dt>Candidates</dt><dd>2</dd>" in page.text
    assert "<dt>New candidates</dt><dd>1</dd>" in page.text
    assert f'{reverse("candidate_list")}?run={run.pk}' in page.text
    assert reverse("heatmap", args=[run.pk]) not in page.text


def test_an_operator_starts_a_run(cast, snapshot):
    client = cast.client_for(cast.operator)
    response = client.post(reverse("run_start", args=[snapshot.pk]), {"mode": "full"})
    run = ScoringRun.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("run_detail", args=[run.pk])
    assert run.mode == Mode.FULL and run.status == RunStatus.QUEUED
    assert run.created_by == cast.operator
    # Baseline plus one call per memory key (4 distinct keys in the snapshot).
    assert run.calls_total == 5 == ScoreCall.objects.filter(run=run).count()
    assert Activity.objects.filter(verb="started run", target_id=str(run.pk), actor=cast.operator).exists()
    follow = client.get(response.url)
    assert f"Started {run}" in follow.text


def test_it_sends_field_errors_back_on_the_snapshot_page(cast, snapshot):
    client = cast.client_for(cast.operator)
    response = client.post(reverse("run_start", args=[snapshot.pk]), {"mode": "memory"})
    # The snapshot's page itself, not a redirect to it that loses what was sent.
    assert response.status_code == 200 and "Snapshot of poc" in response.text
    assert '<a href="#id_key">Memory key</a>: Choose the memory to score.' in response.text
    assert not ScoringRun.objects.exists()

    response = client.post(reverse("run_start", args=[snapshot.pk]), {"mode": "finetune", "count": "0"})
    assert '<a href="#id_count">Last entries</a>: must be at least 1' in response.text
    assert not ScoringRun.objects.exists()


def test_a_viewer_cannot_start_or_cancel(cast, snapshot, active_run):
    client = cast.client_for(cast.viewer)
    assert client.post(reverse("run_start", args=[snapshot.pk]), {"mode": "full"}).status_code == 403
    assert client.post(reverse("run_cancel", args=[active_run.pk])).status_code == 403
    assert ScoringRun.objects.count() == 1
    active_run.refresh_from_db()
    assert active_run.status == RunStatus.RUNNING
    assert not Activity.objects.filter(target_type="scoringrun").exists()


def test_an_outsider_gets_403_everywhere(cast, snapshot, active_run):
    client = cast.client_for(cast.outsider)
    for name, args in [("run_list", []), ("run_detail", [active_run.pk]), ("run_progress", [active_run.pk])]:
        assert client.get(reverse(name, args=args)).status_code == 403, name
    assert client.post(reverse("run_start", args=[snapshot.pk]), {"mode": "full"}).status_code == 403
    assert client.post(reverse("run_cancel", args=[active_run.pk])).status_code == 403
    assert ScoringRun.objects.count() == 1


def test_it_requires_login(client, active_run):
    response = client.get(reverse("run_detail", args=[active_run.pk]))
    assert response.status_code == 302 and "/login/" in response.url


def test_an_operator_cancels_a_run(cast, active_run):
    client = cast.client_for(cast.operator)
    response = client.post(reverse("run_cancel", args=[active_run.pk]))
    assert response.status_code == 302
    active_run.refresh_from_db()
    assert active_run.status == RunStatus.CANCELLED
    assert active_run.cancelled_by == cast.operator
    assert Activity.objects.filter(verb="cancelled run", target_id=str(active_run.pk)).count() == 1

    # Cancelling again changes nothing.
    client.post(reverse("run_cancel", args=[active_run.pk]))
    assert Activity.objects.filter(verb="cancelled run").count() == 1


def test_cancel_over_htmx_returns_the_final_fragment(cast, active_run):
    response = cast.client_for(cast.operator).post(
        reverse("run_cancel", args=[active_run.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="run-progress"')
    assert "hx-trigger" not in response.text
    assert "cancelled" in response.text
    assert f"Cancelled by {cast.operator.username}" in response.text


def test_cancel_is_post_only(cast, active_run):
    response = cast.client_for(cast.operator).get(reverse("run_cancel", args=[active_run.pk]))
    assert response.status_code == 405
    active_run.refresh_from_db()
    assert active_run.status == RunStatus.RUNNING


def test_posts_need_the_csrf_token(cast, snapshot, active_run):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.operator)
    assert client.post(reverse("run_start", args=[snapshot.pk]), {"mode": "full"}).status_code == 403
    assert client.post(reverse("run_cancel", args=[active_run.pk])).status_code == 403
    assert ScoringRun.objects.count() == 1
    active_run.refresh_from_db()
    assert active_run.status == RunStatus.RUNNING

    # With the token from a page, the same POST goes through.
    client.get(reverse("run_detail", args=[active_run.pk]))
    token = client.cookies["csrftoken"].value
    response = client.post(reverse("run_cancel", args=[active_run.pk]), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    active_run.refresh_from_db()
    assert active_run.status == RunStatus.CANCELLED


def test_it_counts_a_failed_call_in_the_run_page(cast, agent):
    run = matrix_run(agent, [[0.5, 0.2], [FAILED, FAILED]], status=RunStatus.PARTIAL)
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk]))
    assert "HTTP 500 from /score" in page.text
    assert "finished with failures" in page.text


# --- issue 12: live "About this run", who started it, labels -------------------

def test_the_polled_progress_brings_about_this_run_along(cast, active_run):
    """Defect 4: the bar said succeeded while "About this run" still said
    "Finished —"; the polled fragment now swaps the panel out of band."""
    finished = timezone.now()
    ScoringRun.objects.filter(pk=active_run.pk).update(
        status=RunStatus.SUCCEEDED, calls_done=9, finished_at=finished, result={"memories": 2, "cells": 8}
    )
    fragment = cast.client_for(cast.viewer).get(
        reverse("run_progress", args=[active_run.pk]), HTTP_HX_REQUEST="true"
    ).text
    assert '<section id="run-about" class="card" hx-swap-oob="true">' in fragment
    about = fragment[fragment.index('id="run-about"'):]
    assert timezone.localtime(finished).strftime("%Y-%m-%d %H:%M:%S") in about
    assert "not yet" not in about
    assert "<dt>Memories scored</dt><dd>2</dd>" in about
    # The page itself has the panel once, not out of band.
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[active_run.pk])).text
    assert page.count('id="run-about"') == 1 and "hx-swap-oob" not in page


def test_a_run_started_from_the_command_line_says_so(cast, agent, snapshot):
    """Defect 5: no user and "command line" in the log: not "background scoring"."""
    from_cli = ScoringRun.objects.create(agent=agent, snapshot=snapshot, mode=Mode.FULL)
    Activity.record(None, "started run", from_cli, actor_name="command line", mode="full")
    from_beat = ScoringRun.objects.create(agent=agent, snapshot=snapshot, mode=Mode.INCREMENTAL)
    Activity.record(None, "started run", from_beat, mode="incremental")
    client = cast.client_for(cast.viewer)

    page = client.get(reverse("run_detail", args=[from_cli.pk])).text
    assert "<dt>Started by</dt><dd>command line</dd>" in page
    page = client.get(reverse("run_detail", args=[from_beat.pk])).text
    assert "<dt>Started by</dt><dd>background scoring</dd>" in page
    listing = client.get(reverse("run_list")).text
    assert '<span class="muted">command line</span>' in listing
    assert '<span class="muted">background scoring</span>' in listing


def test_parameters_and_findings_are_labelled_by_the_mode(cast, agent, snapshot):
    """Defect 8: ABOVE_THRESHOLD, ALTERNATES True and sixteen-digit floats were shown."""
    run = ScoringRun.objects.create(
        agent=agent, snapshot=snapshot, mode=Mode.FINETUNE, status=RunStatus.SUCCEEDED,
        finished_at=timezone.now(), params={"count": 134, "min_divergence": 1.23456789, "alternates": True},
        result={"responses": 40, "above_threshold": 3, "without_timestamp": 0, "candidates": [1, 2, 3], "new": 1},
    )
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk])).text
    assert "<dt>Last entries</dt><dd>134</dd>" in page
    assert "<dt>Minimum divergence (nats)</dt><dd>1.23</dd>" in page
    assert "<dd>yes</dd>" in page and "True" not in page
    assert "<dt>Above the minimum divergence</dt><dd>3</dd>" in page
    assert "<dt>Candidates</dt><dd>3</dd>" in page
    for raw in ("above_threshold", "without_timestamp", "min_divergence", "<dt>alternates"):
        assert raw not in page


@pytest.mark.django_db(transaction=True)
def test_it_says_the_run_waits_for_the_broker_when_it_is_down(cast, snapshot):
    # transaction=True: the run's tasks are sent as the view's transaction commits.
    client = cast.client_for(cast.operator)
    with broker_at_closed_port():
        started = time.monotonic()
        response = client.post(reverse("run_start", args=[snapshot.pk]), {"mode": "full"}, follow=True)
        assert time.monotonic() - started < 10
    run = ScoringRun.objects.get()
    assert run.status == RunStatus.QUEUED and run.calls_total == 5
    assert response.redirect_chain[-1][0] == reverse("run_detail", args=[run.pk])
    assert "cannot be reached: it will start when the broker is back" in response.text
    assert f"Started {run}" not in response.text


@pytest.mark.django_db(transaction=True)
def test_it_says_started_when_the_broker_took_the_run(cast, snapshot):
    client = cast.client_for(cast.operator)
    response = client.post(reverse("run_start", args=[snapshot.pk]), {"mode": "full"}, follow=True)
    run = ScoringRun.objects.get()
    assert f"Started {run}" in response.text
    assert "broker" not in response.text
    assert run.enqueued_at is not None


def test_a_run_cancelled_from_the_command_line_says_why(cast, active_run):
    active_run.cancel(actor_name="command line", why="interrupted (Ctrl-C) where it ran")
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[active_run.pk])).text
    # A sentence of the page, not an error's code-styled text.
    said = ('<div class="notice" id="run-cancelled">Cancelled by command line: interrupted (Ctrl-C) where it ran. '
            "The calls done before are kept.")
    assert said in page
    # The activity log says why too (it said only the mode: walkthrough).
    log = cast.client_for(cast.viewer).get(reverse("activity_list")).text
    assert "interrupted (Ctrl-C) where it ran" in log


def test_an_operator_sends_a_partial_runs_failed_calls_again(cast, active_run):
    ScoringRun.objects.filter(pk=active_run.pk).update(status=RunStatus.PARTIAL, finished_at=timezone.now())
    url = reverse("run_retry", args=[active_run.pk])
    page = cast.client_for(cast.operator).get(reverse("run_detail", args=[active_run.pk])).text
    assert f'action="{url}"' in page and "Send the 1 failed call again" in page
    # Not for a reviewer: neither the button nor the action.
    reviewer = cast.client_for(cast.reviewer)
    assert f'action="{url}"' not in reviewer.get(reverse("run_detail", args=[active_run.pk])).text
    assert reviewer.post(url).status_code == 403
    assert cast.client_for(cast.operator).get(url).status_code == 405
    active_run.refresh_from_db()
    assert active_run.status == RunStatus.PARTIAL

    response = cast.client_for(cast.operator).post(url)

    assert response.status_code == 302
    active_run.refresh_from_db()
    assert (active_run.status, active_run.calls_failed, active_run.finished_at) == (RunStatus.QUEUED, 0, None)
    assert not active_run.calls.filter(status=ScoreCall.Status.FAILED).exists()
    entry = Activity.objects.get(verb="retried the failed calls of")
    assert entry.actor == cast.operator and entry.detail["calls"] == 1
    # Sent again, it has nothing more to send.
    cast.client_for(cast.operator).post(url)
    assert Activity.objects.filter(verb="retried the failed calls of").count() == 1


def test_a_retried_run_counts_its_time_from_the_retry(cast, active_run):
    """It ended an hour ago with a failed call, which an operator sends again
    now: Elapsed counted the hour it sat ended (and the time left came from
    the rate over it). Both count from the retry now, and say so."""
    an_hour_ago = timezone.now() - timedelta(hours=1)
    ScoringRun.objects.filter(pk=active_run.pk).update(
        status=RunStatus.PARTIAL, started_at=an_hour_ago - timedelta(seconds=50), finished_at=an_hour_ago)
    active_run.refresh_from_db()
    assert active_run.retry_failed(actor_name="test") == 1
    ScoringRun.objects.filter(pk=active_run.pk).update(
        status=RunStatus.RUNNING, retried_at=timezone.now() - timedelta(seconds=30))
    # The calls done since: 1 (of the 6 left) in 30 s.
    active_run.calls.filter(seq=0).update(status=ScoreCall.Status.DONE, finished_at=timezone.now())
    ScoringRun.objects.filter(pk=active_run.pk).update(calls_done=5)

    context = cast.client_for(cast.viewer).get(reverse("run_detail", args=[active_run.pk])).context
    timing = context["timing"]
    assert timing["elapsed"] == timedelta(seconds=30) and timing["since_retry"]
    # 5 calls left at one per 30 s (the page was asked a moment after the 30 s).
    assert timedelta(seconds=148) <= timing["remaining"] <= timedelta(seconds=152)
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[active_run.pk])).text
    assert "since its calls were sent again" in page
    active_run.refresh_from_db()
    assert active_run.started_at == an_hour_ago - timedelta(seconds=50)  # when it first started is kept


def test_failed_calls_that_differ_only_in_their_numbers_read_as_one_line(cast, active_run):
    """Walkthrough: the reference server names each call ("on score call 101"),
    so 7 failed calls were 7 lines of "1". An HTTP status still tells groups apart."""
    errors = [
        "/v1/score HTTP 500: injected failure (http500) on score call 101 (gave up after 4 attempts)",
        "/v1/score HTTP 500: injected failure (http500) on score call 117 (gave up after 4 attempts)",
        "/v1/score HTTP 500: injected failure (http500) on score call 130 (gave up after 4 attempts)",
        "/v1/score HTTP 503: overloaded",
    ]
    for seq, error in enumerate(errors):
        active_run.calls.filter(seq=seq).update(status=ScoreCall.Status.FAILED, error=error)
    active_run.calls.filter(seq=9).update(status=ScoreCall.Status.PENDING, error="")
    groups = cast.client_for(cast.viewer).get(reverse("run_detail", args=[active_run.pk])).context["failed_calls"]
    assert [(g["count"], g["error"], g["varied"]) for g in groups] == [
        (3, errors[0], True), (1, errors[3], False)]
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[active_run.pk])).text
    assert "the others differ only in their numbers" in page


def test_a_one_memory_run_says_its_context_starts_at_the_memory(cast, agent, snapshot):
    """Walkthrough: the same memory × response cell read 86.99 nats in a full
    matrix and 140.59 in a one-memory run, and nothing said why."""
    run = ScoringRun.objects.create(agent=agent, snapshot=snapshot, mode=Mode.MEMORY, status=RunStatus.SUCCEEDED,
                                    params={"key": "people/alice"}, calls_total=2, calls_done=2)
    client = cast.client_for(cast.viewer)
    said = "from the memory&#x27;s first appearance"
    for url in (reverse("run_detail", args=[run.pk]), reverse("heatmap", args=[run.pk])):
        page = client.get(url).text
        assert "the model sees the conversation <strong>from the memory's first\nappearance</strong>" in page, url
        assert "not those of a\nfull matrix" in page, url
    start = cast.client_for(cast.operator).get(reverse("snapshot_detail", args=[snapshot.pk])).text
    assert said in start


def test_the_time_left_starts_after_a_baseline_that_ran_alone(cast, active_run):
    """Walkthrough: the baseline took 20 s alone, then the variants went four
    at a time; the page projected 20 s a call ("about 0:02:32", then growing)
    for a run that ended in seconds."""
    now = timezone.now()
    calls = list(active_run.calls.order_by("seq"))
    baseline = calls[0]
    active_run.calls.exclude(pk=baseline.pk).update(baseline=baseline)
    active_run.calls.filter(seq=0).update(status=ScoreCall.Status.DONE, finished_at=now - timedelta(seconds=4))
    # Three variants in the 4 s since; 5 calls left (10, less 4 done and 1 failed).
    active_run.calls.filter(seq__in=[1, 2, 3]).update(status=ScoreCall.Status.DONE, finished_at=now)
    active_run.calls.filter(seq=9).update(finished_at=now)
    # The run's counters: 4 done (the baseline and three variants), 1 failed.
    assert (active_run.calls_done, active_run.calls_failed) == (4, 1)

    timing = cast.client_for(cast.viewer).get(reverse("run_detail", args=[active_run.pk])).context["timing"]

    # 4 calls (3 done, 1 failed) in the ~4 s after the baseline: about 1 s a call, 5 left.
    assert timedelta(seconds=4) <= timing["remaining"] <= timedelta(seconds=6)


def test_while_only_its_baseline_has_answered_the_time_left_is_not_guessed(cast, active_run):
    calls = list(active_run.calls.order_by("seq"))
    active_run.calls.exclude(pk=calls[0].pk).update(baseline=calls[0])
    active_run.calls.filter(seq=0).update(status=ScoreCall.Status.DONE, finished_at=timezone.now())
    active_run.calls.filter(seq=9).update(status=ScoreCall.Status.PENDING, error="")
    ScoringRun.objects.filter(pk=active_run.pk).update(calls_done=1, calls_failed=0)

    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[active_run.pk]))

    assert page.context["timing"]["remaining"] is None and "estimating…" in page.text
