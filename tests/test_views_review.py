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
    # Holds show on the pages, not in the activity log (where they drowned the decisions).
    assert not Activity.objects.filter(verb__in=["reserved", "released"]).exists()
    # Her own hold says so, not "Held by rita" (walkthrough).
    assert "Held for you until" in r.text and "Held by <strong>rita" not in r.text
    listed = cast.client_for(cast.reviewer).get(reverse("candidate_list")).text.split("<tbody>")[1]
    assert '<span class="stacked-only muted">held by </span>you' in listed
    assert '<span class="stacked-only muted">held by </span>rita' in cast.client_for(
        cast.reviewer2).get(reverse("candidate_list")).text


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


def test_a_candidate_opened_on_its_own_moves_on_in_its_agents_queue(cast, agent, ref):
    # A team reviewing its own agent opened one of its candidates from a link:
    # its decision went on to the demo agent's candidates (the queue of all agents).
    mine = Agent.objects.create(name="myteam", base_url=ref.base_url, model="memscore-ref")
    make_candidate(agent, divergence=9.0)
    first, second = make_candidate(mine, divergence=2.0), make_candidate(mine, divergence=1.0)
    client = cast.client_for(cast.reviewer)

    page = client.get(detail_url(first)).text
    assert f'<input type="hidden" name="agent" value="{mine.pk}">' in page
    r = client.post(reverse("candidate_decide", args=[first.pk]),
                    {"decision": "approve", "agent": mine.pk}, follow=True)

    assert r.redirect_chain[0][0] == queue_url(agent=mine.pk)
    assert r.context["candidate"] == second


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


def test_every_decision_moves_on_and_says_so(cast, agent):
    """Defect 2: approve and reject stayed on the page (htmx), skip and edit
    moved on. Now each moves on to the next candidate, and says what it did."""
    agent.required_approvals = 2
    agent.save()
    first, second, third = (make_candidate(agent, divergence=d) for d in (3.0, 2.0, 1.0))
    client = cast.client_for(cast.reviewer)

    r = decide(client, first, "approve", follow=True)
    assert r.redirect_chain[0][0] == reverse("review_queue")
    assert r.context["candidate"].pk == second.pk
    assert f"You approved candidate #{first.pk}: it still awaits review, with 1 of 2 approvals." in r.text
    r = decide(client, second, "reject", comment="wrong", follow=True)
    assert r.context["candidate"].pk == third.pk
    assert f"You rejected candidate #{second.pk}: it is now rejected." in r.text
    # Over htmx too (a button that still posts with hx-post): a redirect, not a swap.
    r = decide(client, third, "skip", HTTP_HX_REQUEST="true")
    assert r.status_code == 204 and r["HX-Redirect"] == reverse("review_queue")
    # The page says so.
    page = client.get(detail_url(third)).text
    assert "After a decision the next candidate opens" in page


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
    r = client.post(reverse("candidate_comment", args=[c.pk]), {"comment": "  "})
    assert r.status_code == 200 and "This field is required" in r.content.decode()
    assert not Comment.objects.exists()

    r = client.post(reverse("candidate_comment", args=[c.pk]), {"comment": "nice"}, HTTP_HX_REQUEST="true")
    page = r.content.decode()
    assert "nice" in page and "<html" not in page
    # The one comment box comes back empty, out of band.
    assert '<form id="decide-form"' in page and 'hx-swap-oob="true"' in page
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




# --- issue 12: n moves on, the settling rule, blind review, bulk -------------------

def test_n_on_an_undecided_candidate_moves_on(cast, agent):
    """Defect 2: the queue gave the reviewer back the candidate they held."""
    first, second, third = (make_candidate(agent, divergence=d) for d in (3.0, 2.0, 1.0))
    client = cast.client_for(cast.reviewer)
    assert client.get(queue_url()).context["candidate"].pk == first.pk
    page = client.get(queue_url()).text
    assert f'{reverse("review_queue")}?after={first.pk}' in page  # the n link

    r = client.get(queue_url(after=first.pk))
    assert r.context["candidate"].pk == second.pk
    first.refresh_from_db()
    assert first.reserved_by is None  # let go of, for others
    assert client.get(queue_url(after=second.pk)).context["candidate"].pk == third.pk
    # Past the last one, back to the top; nothing was decided on the way.
    assert client.get(queue_url(after=third.pk)).context["candidate"].pk == first.pk
    assert not Review.objects.exists()


def test_n_on_the_only_candidate_says_so(cast, agent):
    only = make_candidate(agent)
    r = cast.client_for(cast.reviewer).get(queue_url(after=only.pk))
    assert r.context["candidate"].pk == only.pk
    assert "No other candidate waits for you" in r.text


def test_the_page_and_the_queue_state_the_rule(cast, agent):
    """Defect 3: the rule is shown where reviewers decide."""
    agent.required_approvals, agent.rejections_to_settle = 2, 1
    agent.save()
    c = make_candidate(agent)
    client = cast.client_for(cast.reviewer)
    page = client.get(detail_url(c)).text
    assert "Needs 2 approvals; 1 rejection rejects it." in page
    page = client.get(queue_url(agent=agent.pk)).text
    assert 'id="queue-rule"' in page and "poc: Needs 2 approvals; 1 rejection rejects it." in page
    listing = client.get(reverse("candidate_list")).text
    assert "0 of 2 approvals" in listing
    agent.required_approvals = 1
    agent.save()
    assert "0 of 1 approval<" in client.get(reverse("candidate_list")).text


def bulk(client, ids, decision, comment="", next_url=""):
    return client.post(reverse("candidate_bulk"), {"ids": ids, "decision": decision, "comment": comment,
                                                   "next": next_url}, follow=True)


def test_bulk_approves_a_selection_through_the_model_verbs(cast, agent):
    agent.required_approvals = 2
    agent.save()
    a, b, untouched = (make_candidate(agent, divergence=d) for d in (3.0, 2.0, 1.0))
    for c in (a, b):
        c.decide(cast.reviewer2, "approve")
    back = reverse("candidate_list") + f"?agent={agent.pk}"

    r = bulk(cast.client_for(cast.reviewer), [a.pk, b.pk], "approve", "looks right", back)

    assert r.redirect_chain[-1][0] == back
    assert f"You approved 2 candidates: #{a.pk}, #{b.pk}." in r.text
    for c in (a, b):
        c.refresh_from_db()
        assert c.status == Candidate.Status.APPROVED
        assert Review.objects.get(candidate=c, reviewer=cast.reviewer).comment == "looks right"
    untouched.refresh_from_db()
    assert untouched.status == Candidate.Status.PENDING and not untouched.reviews.exists()
    assert Activity.objects.filter(verb="approved", actor=cast.reviewer).count() == 2


def test_bulk_reject_needs_the_comment_and_reports_refusals(cast, agent):
    a, b = make_candidate(agent), make_candidate(agent)
    client = cast.client_for(cast.reviewer)
    r = bulk(client, [a.pk], "reject")
    assert "Nothing decided. A rejection needs a comment saying why." in r.text
    assert not Review.objects.exists()

    b.decide(cast.reviewer2, "approve")
    send_to_training(agent, cast.operator)  # b is in a live job now: final
    r = bulk(client, [a.pk, b.pk], "reject", "not useful")
    assert f"You rejected 1 candidate: #{a.pk}." in r.text
    assert f"Not decided: #{b.pk} (This candidate has been sent to training" in r.text


def test_bulk_needs_the_reviewer_role_and_a_post(cast, agent):
    c = make_candidate(agent)
    for user in (cast.viewer, cast.outsider):
        r = cast.client_for(user).post(reverse("candidate_bulk"), {"ids": [c.pk], "decision": "approve"})
        assert r.status_code == 403
    assert cast.client_for(cast.reviewer).get(reverse("candidate_bulk")).status_code == 405
    assert not Review.objects.exists()
    # A foreign "next" is not followed.
    r = cast.client_for(cast.reviewer).post(reverse("candidate_bulk"), {
        "ids": [c.pk], "decision": "approve", "next": "https://evil.example/"})
    assert r.url == reverse("candidate_list")
