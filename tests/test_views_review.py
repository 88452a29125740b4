"""Review pages: the queue, deciding, skipping, comments and edits (the candidate
list, page and export are in test_views_candidates.py)."""

import pytest
from candidate_factory import decide, detail_url, make_candidate, queue_url
from django.test import Client
from django.urls import reverse

from scoring.models import Activity, Agent, Candidate, Comment, Review
from scoring.outbox import send_to_training

# --- the queue ------------------------------------------------------------------

def test_it_shows_the_next_candidate_and_reserves_it(cast, agent):
    make_candidate(agent, divergence=1.0)
    top = make_candidate(agent, divergence=4.0, response_text="The top answer about basil.")

    r = cast.client_for(cast.reviewer).get(queue_url())

    assert r.status_code == 200
    assert r.context["candidate"].pk == top.pk
    assert "The top answer about basil." in r.content.decode()
    top.refresh_from_db()
    assert top.reserved_by == cast.reviewer
    assert Activity.objects.filter(verb="reserved", actor=cast.reviewer).count() == 1


def test_it_offers_the_next_candidate_when_another_reviewer_holds_one(cast, agent):
    second = make_candidate(agent, divergence=1.0)
    top = make_candidate(agent, divergence=4.0)
    cast.client_for(cast.reviewer).get(queue_url())

    r = cast.client_for(cast.reviewer2).get(queue_url())

    assert r.context["candidate"].pk == second.pk
    page = r.content.decode()
    assert "Held by others" in page and f"#{top.pk}" in page and "rita" in page
    # Opening the held one shows who holds it.
    r = cast.client_for(cast.reviewer2).get(detail_url(top))
    assert "is reviewing this candidate" in r.content.decode()


def test_it_filters_the_queue_by_agent(cast, agent, ref):
    other = Agent.objects.create(name="other", base_url=ref.base_url, model="memscore-ref")
    make_candidate(agent, divergence=9.0)
    mine = make_candidate(other, divergence=1.0)
    r = cast.client_for(cast.reviewer).get(queue_url(agent=other.pk))
    assert r.context["candidate"].pk == mine.pk
    r = cast.client_for(cast.reviewer2).get(queue_url(agent="other"))
    assert r.context["queue"]["agent"] == other


def test_it_says_when_the_queue_is_empty(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer, "skip")
    r = cast.client_for(cast.reviewer).get(queue_url())
    assert r.status_code == 200
    assert "Nothing left for you to review" in r.content.decode()
    assert r.context["queue"]["pending_count"] == 1


def test_it_lets_viewers_look_without_reserving(cast, agent):
    c = make_candidate(agent)
    r = cast.client_for(cast.viewer).get(queue_url())
    assert r.status_code == 200 and r.context["candidate"].pk == c.pk
    assert "needs the reviewer role" in r.content.decode()
    c.refresh_from_db()
    assert c.reserved_by is None


# --- the list ---------------------------------------------------------------------


# --- one candidate ------------------------------------------------------------------


# --- deciding -------------------------------------------------------------------------

def test_it_approves_and_moves_on(cast, agent):
    c = make_candidate(agent)
    r = decide(cast.client_for(cast.reviewer), c, "approve", follow=True)
    assert r.redirect_chain[0][0] == reverse("review_queue")
    assert "You approved candidate" in r.content.decode()
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED


def test_it_approves_in_place_with_htmx(cast, agent):
    c = make_candidate(agent)
    r = decide(cast.client_for(cast.reviewer), c, "approve", HTTP_HX_REQUEST="true")
    page = r.content.decode()
    assert r.status_code == 200
    assert 'id="decisions"' in page and "rita" in page
    assert 'id="decide-form"' in page and 'hx-swap-oob="true"' in page
    assert "<html" not in page
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED


def test_it_shows_the_error_when_rejecting_without_a_comment(cast, agent):
    c = make_candidate(agent)
    client = cast.client_for(cast.reviewer)

    r = decide(client, c, "reject", comment="  ")
    assert r.status_code == 200
    assert "A rejection needs a comment" in r.content.decode()

    r = decide(client, c, "reject", HTTP_HX_REQUEST="true")
    assert r["HX-Retarget"] == "#decide-form" and r["HX-Reswap"] == "outerHTML"
    assert "A rejection needs a comment" in r.content.decode()
    assert "<html" not in r.content.decode()

    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING and not c.reviews.exists()

    decide(client, c, "reject", comment="wrong name")
    c.refresh_from_db()
    assert c.status == Candidate.Status.REJECTED


def test_it_refuses_a_decision_on_a_sent_candidate(cast, agent):
    c = make_candidate(agent, status=Candidate.Status.APPROVED)
    send_to_training(agent, cast.operator)
    r = decide(cast.client_for(cast.reviewer), c, "reject", comment="too late?")
    assert r.status_code == 200 and "sent to training" in r.content.decode()
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED and not c.reviews.exists()


def test_it_skips_to_the_next_candidate(cast, agent):
    c = make_candidate(agent)
    r = decide(cast.client_for(cast.reviewer), c, "skip")
    assert r.status_code == 302
    assert c.reviews.get().decision == Review.Decision.SKIP
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING


@pytest.mark.parametrize("role", ["viewer", "outsider"])
def test_it_forbids_deciding_commenting_and_editing_without_the_reviewer_role(cast, agent, ref, role):
    c = make_candidate(agent)
    client = cast.client_for(getattr(cast, role))
    tokenize_calls = ref.stats()["total_calls"].get("tokenize", 0)
    assert decide(client, c, "approve").status_code == 403
    assert client.post(reverse("candidate_comment", args=[c.pk]), {"text": "hi"}).status_code == 403
    assert client.post(reverse("candidate_edit", args=[c.pk]), {"text": "new"}).status_code == 403
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING and c.edited_ids is None
    assert not Review.objects.exists() and not Comment.objects.exists()
    assert ref.stats()["total_calls"].get("tokenize", 0) == tokenize_calls


def test_it_lets_operators_decide_too(cast, agent):
    c = make_candidate(agent)
    decide(cast.client_for(cast.operator), c, "approve")
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED


def test_it_only_decides_by_post(cast, agent):
    c = make_candidate(agent)
    r = cast.client_for(cast.reviewer).get(reverse("candidate_decide", args=[c.pk]))
    assert r.status_code == 405


def test_it_enforces_csrf(cast, agent):
    c = make_candidate(agent)
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.reviewer)

    assert decide(client, c, "approve").status_code == 403
    assert client.post(reverse("candidate_comment", args=[c.pk]), {"text": "x"}).status_code == 403
    assert client.post(reverse("candidate_edit", args=[c.pk]), {"text": "x"}).status_code == 403
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING and not Comment.objects.exists()

    client.get(detail_url(c))
    token = client.cookies["csrftoken"].value
    r = client.post(reverse("candidate_decide", args=[c.pk]),
                    {"decision": "approve", "csrfmiddlewaretoken": token})
    assert r.status_code == 302
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED


# --- comments and edits ---------------------------------------------------------------------

def test_it_adds_a_comment(cast, agent):
    c = make_candidate(agent)
    client = cast.client_for(cast.reviewer)
    r = client.post(reverse("candidate_comment", args=[c.pk]), {"text": "  "})
    assert r.status_code == 200 and "This field is required" in r.content.decode()
    assert not Comment.objects.exists()

    r = client.post(reverse("candidate_comment", args=[c.pk]), {"text": "nice"}, HTTP_HX_REQUEST="true")
    page = r.content.decode()
    assert "nice" in page and 'id="comment-form"' in page and "<html" not in page
    assert Comment.objects.get().author == cast.reviewer


def test_it_edits_and_approves(cast, agent):
    c = make_candidate(agent)
    client = cast.client_for(cast.reviewer)

    r = client.post(reverse("candidate_edit", args=[c.pk]), {"text": ""})
    assert r.status_code == 200 and "This field is required" in r.content.decode()
    r = client.post(reverse("candidate_edit", args=[c.pk]), {"text": " \n "})
    assert "cannot be empty" in r.content.decode()
    c.refresh_from_db()
    assert c.edited_ids is None and c.status == Candidate.Status.PENDING

    r = client.post(reverse("candidate_edit", args=[c.pk]), {"text": "Alice needs more sun."})
    assert r.status_code == 302
    c.refresh_from_db()
    assert c.edited_text == "Alice needs more sun." and c.edited_ids
    assert c.status == Candidate.Status.APPROVED

    page = client.get(detail_url(c)).content.decode()
    assert "Edited response" in page and "<ins>" in page


def test_it_reports_a_tokenizer_failure_on_the_edit_form(cast, agent):
    c = make_candidate(agent)
    agent.base_url = "http://127.0.0.1:9/v1"
    agent.save()
    r = cast.client_for(cast.reviewer).post(reverse("candidate_edit", args=[c.pk]), {"text": "fixed"})
    assert r.status_code == 200 and "could not tokenize" in r.content.decode()
    c.refresh_from_db()
    assert c.edited_ids is None and c.status == Candidate.Status.PENDING


# --- escaping ---------------------------------------------------------------------------------


# --- the export --------------------------------------------------------------------------------


# --- query counts -------------------------------------------------------------------------------


