"""Decided candidates (defect 2): the page says a candidate is settled and what
a new vote would do; a vote that would reverse it (on the page, by edit and
approve, or in bulk) needs an explicit confirmation and is logged; a replaced
decision stays visible; the approvals header never reads "2 of 1"."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from scoring.models import Activity, Candidate, Review
from scoring.models.candidates import ReversalNeedsConfirmation
from tests.candidate_factory import make_candidate


def page(client, c):
    return client.get(reverse("candidate_detail", args=[c.pk])).text


def decide(client, c, **data):
    return client.post(reverse("candidate_decide", args=[c.pk]), data)


@pytest.fixture
def rejected(cast, agent):
    """The user's walk: rita (alice) rejects #3 with a comment."""
    c = make_candidate(agent)
    c.decide(cast.reviewer, "reject", "Not what Alice said.")
    assert c.status == Candidate.Status.REJECTED
    return c


def test_the_page_says_a_settled_candidate_is_decided_and_what_a_vote_would_do(cast, rejected):
    html = page(cast.client_for(cast.reviewer2), rejected)
    note = html[html.index('id="settled-note"'):html.index("</div>", html.index('id="settled-note"'))]
    assert "Already rejected" in note
    assert "Approve: recorded; it stays rejected" in note
    # rita's own approval would replace her rejection: that reverses it.
    html = page(cast.client_for(cast.reviewer), rejected)
    assert "Approve: <strong>reverses it to approved</strong> (you will be asked to confirm)" in html


def test_a_vote_that_changes_nothing_is_recorded_and_says_so(cast, rejected):
    client = cast.client_for(cast.reviewer2)
    r = decide(client, rejected, decision="approve")
    assert r.status_code == 302
    rejected.refresh_from_db()
    assert rejected.status == Candidate.Status.REJECTED
    assert Review.objects.get(candidate=rejected, reviewer=cast.reviewer2).decision == "approve"
    said = [str(m) for m in client.get(r["Location"]).context["messages"]]
    assert any("it stays rejected (your vote did not change the outcome)" in m for m in said)


def test_reversing_on_the_page_needs_the_confirmation_button(cast, rejected):
    client = cast.client_for(cast.reviewer)
    r = decide(client, rejected, decision="approve")
    assert r.status_code == 200
    assert "is already rejected; your approval would make it approved" in r.text
    assert 'name="confirm_reversal" value="approve"' in r.text
    assert "{#" not in r.text  # a template comment over two lines shows as text
    rejected.refresh_from_db()
    assert rejected.status == Candidate.Status.REJECTED
    assert Review.objects.get(reviewer=cast.reviewer).decision == "reject"

    # The confirmation for another decision does not confirm this one.
    decide(client, rejected, decision="skip", confirm_reversal="approve")
    rejected.refresh_from_db()
    assert rejected.status == Candidate.Status.REJECTED

    r = decide(client, rejected, confirm_reversal="approve")  # the confirmation's own button
    assert r.status_code == 302
    rejected.refresh_from_db()
    assert rejected.status == Candidate.Status.APPROVED
    entry = Activity.objects.get(verb="reversed the decision on")
    assert entry.actor == cast.reviewer and entry.detail["from"] == "rejected" and entry.detail["to"] == "approved"
    said = [str(m) for m in client.get(r["Location"]).context["messages"]]
    assert any("which reverses it from rejected to approved" in m for m in said)


def test_a_refused_reversal_keeps_the_queues_agent(cast, rejected):
    """The forms send the queue's agent; the form a refusal brings back keeps
    it, so the decision that follows moves on in that agent's queue."""
    client = cast.client_for(cast.reviewer)
    agent = f'<input type="hidden" name="agent" value="{rejected.agent_id}">'
    data = {"decision": "approve", "comment": "Sun, then.", "agent": rejected.agent_id}
    r = client.post(reverse("candidate_decide", args=[rejected.pk]), data, HTTP_HX_REQUEST="true")
    assert r["HX-Retarget"] == "#decide-form" and "<html" not in r.text
    assert 'id="confirm-reversal"' in r.text and ">Sun, then.</textarea>" in r.text and agent in r.text
    assert agent in decide(client, rejected, **data).text  # without JavaScript, the whole page
    # "Add comment only" brings back a fresh form, which keeps it too.
    r = client.post(reverse("candidate_comment", args=[rejected.pk]), data, HTTP_HX_REQUEST="true")
    assert 'hx-swap-oob="true"' in r.text and agent in r.text
    r = decide(client, rejected, confirm_reversal="approve", agent=rejected.agent_id)
    assert r["Location"] == reverse("review_queue") + f"?agent={rejected.agent_id}"


def test_a_replaced_decision_stays_in_the_history(cast, rejected):
    rejected.decide(cast.reviewer, "approve", confirm_reversal=True)
    # The history is asked for once a review was changed well after it was made.
    Review.objects.filter(reviewer=cast.reviewer).update(created_at=timezone.now() - timedelta(minutes=5))
    html = page(cast.client_for(cast.reviewer2), rejected)
    history = html[html.index('id="decision-history"'):html.index("</table>", html.index('id="decision-history"'))]
    assert "rejected" in history and "Not what Alice said." in history
    assert "(replacing their rejection)" in history
    assert "<strong>reversed</strong> it: rejected → approved (confirmed)" in history
    assert Activity.objects.get(verb="approved").detail["replaced_comment"] == "Not what Alice said."


def test_a_reversal_by_a_new_vote_shows_in_the_history(cast, agent):
    """No one changed their own vote: rob approved, rita's confirmed rejection
    reversed it. The page kept no record of that but the activity log."""
    c = make_candidate(agent)
    c.decide(cast.reviewer2, "approve", "Looks right.")
    c.decide(cast.reviewer, "reject", "The physio advice is medical.", confirm_reversal=True)
    html = page(cast.client_for(cast.viewer), c)
    assert 'id="decision-history"' in html
    note = html[html.index('id="history-note"'):html.index("</p>", html.index('id="history-note"'))]
    assert "The decision was reversed" in note and "changed their decision" not in note
    history = html[html.index('id="decision-history"'):html.index("</table>", html.index('id="decision-history"'))]
    reversal = "<strong>reversed</strong> it: approved → rejected (confirmed)"
    assert history.index("Looks right.") < history.index(reversal)
    assert "The physio advice is medical." in history


def test_no_history_without_a_change_or_a_reversal(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer2, "approve")
    c.decide(cast.reviewer, "approve")  # recorded; it stays approved
    assert 'id="decision-history"' not in page(cast.client_for(cast.viewer), c)


def test_bulk_leaves_settled_candidates_unless_confirmed(cast, agent, rejected):
    pending = make_candidate(agent, divergence=1.0)
    client = cast.client_for(cast.reviewer)
    url = reverse("candidate_bulk")
    r = client.post(url, {"ids": [rejected.pk, pending.pk], "decision": "approve"}, follow=True)
    said = " ".join(str(m) for m in r.context["messages"])
    assert f"#{rejected.pk} (rejected → approved)" in said and "tick “Reverse settled candidates too”" in said
    rejected.refresh_from_db()
    pending.refresh_from_db()
    assert rejected.status == Candidate.Status.REJECTED and pending.status == Candidate.Status.APPROVED
    assert Review.objects.get(candidate=rejected, reviewer=cast.reviewer).comment == "Not what Alice said."

    r = client.post(url, {"ids": [rejected.pk], "decision": "approve", "confirm_reversal": "1"}, follow=True)
    rejected.refresh_from_db()
    assert rejected.status == Candidate.Status.APPROVED
    assert "You reversed settled decisions" in " ".join(str(m) for m in r.context["messages"])
    assert Activity.objects.filter(verb="reversed the decision on", target_id=str(rejected.pk)).count() == 1


def test_the_header_never_reads_more_than_required(cast, rejected):
    rejected.decide(cast.reviewer2, "approve")
    rejected.decide(cast.reviewer, "approve", confirm_reversal=True)
    html = page(cast.client_for(cast.viewer), rejected)
    assert "2 of 1" not in html
    assert '<span id="approvals-count"><strong>2</strong> approvals (1 needed)' in html
    listing = cast.client_for(cast.viewer).get(reverse("candidate_list")).text
    assert "2 / 1" not in listing and "2 approvals (1 needed)" in listing


def test_edit_and_approve_asks_to_confirm_a_reversal_before_calling_the_server(cast, rejected, ref):
    client = cast.client_for(cast.reviewer)
    calls = ref.stats()["total_calls"].get("tokenize", 0)
    url = reverse("candidate_edit", args=[rejected.pk])
    r = client.post(url, {"text": "Alice said the tomatoes need sun."})
    assert r.status_code == 200 and 'id="confirm-edit-reversal"' in r.text
    assert ref.stats()["total_calls"].get("tokenize", 0) == calls
    rejected.refresh_from_db()
    assert rejected.status == Candidate.Status.REJECTED and not rejected.is_edited

    r = client.post(url, {"text": "Alice said the tomatoes need sun.", "confirm_reversal": "approve"})
    assert r.status_code == 302
    rejected.refresh_from_db()
    assert rejected.status == Candidate.Status.APPROVED and rejected.is_edited


def test_the_model_refuses_an_unconfirmed_reversal(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer, "approve")
    with pytest.raises(ReversalNeedsConfirmation):
        c.decide(cast.reviewer2, "reject", "No.")
    with pytest.raises(ReversalNeedsConfirmation):
        c.decide(cast.reviewer, "skip")  # back to pending is a reversal too
    assert not Review.objects.filter(reviewer=cast.reviewer2).exists()
    # Pending candidates need no confirmation, whatever the vote.
    other = make_candidate(agent)
    other.decide(cast.reviewer, "skip")
    other.decide(cast.reviewer, "reject", "No.")
    assert other.status == Candidate.Status.REJECTED


def test_trained_stays_final_even_confirmed(cast, agent):
    c = make_candidate(agent, status=Candidate.Status.TRAINED)
    with pytest.raises(ValidationError, match="final"):
        c.decide(cast.reviewer, "reject", "No.", confirm_reversal=True)
    assert 'id="settled-note"' not in page(cast.client_for(cast.reviewer), c)


def test_blind_review_hides_no_more_and_no_less(cast, agent):
    agent.blind_review = True
    agent.required_approvals = 2
    agent.save()
    c = make_candidate(agent)
    c.decide(cast.reviewer, "approve")
    html = page(cast.client_for(cast.reviewer2), c)
    assert 'id="blind-note"' in html and 'id="decision-history"' not in html and 'id="settled-note"' not in html
