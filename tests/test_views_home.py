"""The home page (what waits for me, runs in progress, training and its effect,
recent activity), the navigation's count of my pending reviews, the styled
403 and 404 pages and /favicon.ico."""

from datetime import UTC, datetime

import pytest
from candidate_factory import make_candidate
from django.test import Client
from django.urls import reverse

from scoring import outbox
from scoring.engine import run_inline
from scoring.engine.rescore import rescore
from scoring.models import Activity, Agent, Candidate, ScoringRun, Snapshot, TrainJob
from scoring.models.runs import Mode, RunStatus
from scoring.outbox import send_to_training


@pytest.fixture
def other(db, ref):
    return Agent.objects.create(name="other", base_url=ref.base_url, model="memscore-ref")


def test_it_shows_what_waits_for_me_per_agent(cast, agent, other):
    make_candidate(agent, divergence=3.0)
    decided = make_candidate(agent, divergence=2.0)
    make_candidate(other, divergence=1.0)
    decided.decide(cast.reviewer, "skip")

    r = cast.client_for(cast.reviewer).get(reverse("home"))

    assert r.status_code == 200
    rows = {row["name"]: (row["mine"], row["pending"]) for row in r.context["review_rows"]}
    assert rows == {"poc": (1, 2), "other": (1, 1)}
    assert r.context["mine_total"] == 2
    html = r.text
    assert "<strong>2</strong> candidates wait for your decision" in html
    assert f'{reverse("review_queue")}?agent={agent.pk}' in html
    # The navigation counts them too, on every page.
    assert 'id="nav-pending"' in html and ">2</span>" in html
    page = cast.client_for(cast.reviewer).get(reverse("run_list")).text
    assert 'id="nav-pending"' in page


def test_a_viewer_sees_counts_but_no_queue_of_their_own(cast, agent):
    make_candidate(agent)
    html = cast.client_for(cast.viewer).get(reverse("home")).text
    assert "wait for your decision" not in html and 'id="nav-pending"' not in html
    assert 'id="home-review"' in html


def test_an_operator_sees_what_awaits_review_not_a_queue_of_their_own(cast, agent):
    # An operator may decide a candidate, but the queue holds candidates for
    # the reviewer role only (its page says so): nothing is "for you".
    candidate = make_candidate(agent)
    assert cast.operator.has_perm("scoring.review_candidate")

    html = cast.client_for(cast.operator).get(reverse("home")).text

    assert "wait for your decision" not in html and 'id="nav-pending"' not in html
    assert 'id="home-review"' in html and "For you" not in html
    # Nor does any other page count candidates "awaiting your review" for them.
    client = cast.client_for(cast.operator)
    for url in (reverse("candidate_list"), reverse("snapshot_detail", args=[candidate.snapshot_id])):
        page = client.get(url).text
        assert "awaiting your review" not in page, url
    assert "awaiting your review" in cast.client_for(cast.reviewer).get(reverse("candidate_list")).text


def test_it_shows_runs_in_progress_and_recent_activity(cast, agent):
    snapshot = Snapshot.objects.create(agent=agent, taken_at=datetime(2026, 11, 1, tzinfo=UTC),
                                       source=Snapshot.Source.API)
    running = ScoringRun.objects.create(agent=agent, snapshot=snapshot, mode=Mode.FULL,
                                        status=RunStatus.RUNNING, calls_total=10, calls_done=3)
    Activity.record(None, "started run", running, actor_name="command line", mode="full")
    done = ScoringRun.objects.create(agent=agent, snapshot=snapshot, mode=Mode.FULL, status=RunStatus.SUCCEEDED)

    html = cast.client_for(cast.viewer).get(reverse("home")).text

    assert f'href="{reverse("run_detail", args=[running.pk])}">Run #{running.pk}</a>' in html
    assert f"Run #{done.pk}</a>" not in html
    assert "started by command line" in html
    assert 'id="home-activity"' in html and ">started run</span>" in html


def test_it_shows_a_training_jobs_effect_after_its_rescore(cast, agent):
    make_candidate(agent, status=Candidate.Status.APPROVED, divergence=3.0)
    job = send_to_training(agent, cast.operator)
    outbox.dispatch(job.pk)
    TrainJob.objects.filter(pk=job.pk).update(status=TrainJob.Status.SUCCEEDED)
    client = cast.client_for(cast.viewer)
    assert "not re-scored yet" in client.get(reverse("home")).text

    for run in rescore(TrainJob.objects.get(pk=job.pk), by=cast.operator):
        run_inline(run)
    r = client.get(reverse("home"))

    effect = r.context["jobs"][0].effect
    assert effect["rescored"] == effect["samples"] == 1
    assert effect["before"] == pytest.approx(3.0)
    assert effect["change"] == pytest.approx(effect["after"] - 3.0)
    assert f"mean divergence <strong>3.00 → {effect['after']:.2f}</strong> nats" in r.text


def test_an_outsider_is_told_they_have_no_role(cast):
    r = cast.client_for(cast.outsider).get(reverse("home"))
    assert r.status_code == 200
    assert "Your account has no role yet" in r.text
    # No button to a page that would refuse them, here or on the 403 page.
    assert reverse("agent_list") not in r.text
    refused = cast.client_for(cast.outsider).get(reverse("agent_list"))
    assert refused.status_code == 403 and reverse("agent_list") not in refused.text


def test_home_needs_login(client):
    r = client.get(reverse("home"))
    assert r.status_code == 302 and "/login/" in r.url


# --- 403, 404, favicon -------------------------------------------------------------

def test_403_is_styled_and_names_the_role(cast, agent):
    c = make_candidate(agent)
    r = cast.client_for(cast.viewer).post(reverse("candidate_decide", args=[c.pk]), {"decision": "approve"})
    assert r.status_code == 403
    html = r.content.decode()
    assert 'class="topbar"' in html and "<nav" in html  # base.html, with navigation
    assert "This needs the reviewer role." in html
    assert "signed in as <strong>vera</strong> (viewer)" in html


def test_404_is_styled_with_navigation(cast):
    r = cast.client_for(cast.viewer).get("/runs/999999/")
    assert r.status_code == 404
    html = r.content.decode()
    assert 'class="topbar"' in html and "Page not found" in html
    assert f'href="{reverse("run_list")}"' in html


def test_favicon_is_served_without_login():
    r = Client().get("/favicon.ico")
    assert r.status_code == 301 and r.url.endswith("memscore/favicon.svg")
    assert Client().get(r.url).status_code == 200


def test_the_navigation_stops_counting_at_99(cast, agent, monkeypatch):
    # Counting every pending candidate was a query of tens of milliseconds on
    # every page at 100k candidates: the badge counts a bounded slice.
    monkeypatch.setattr("scoring.views.context_processors.PENDING_BADGE_MAX", 2)
    for _ in range(3):
        make_candidate(agent)

    html = cast.client_for(cast.reviewer).get(reverse("run_list")).text

    assert 'id="nav-pending"' in html and ">2+</span>" in html
