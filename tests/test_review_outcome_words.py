"""What the page says after a decision, for every outcome: the vote moved the
candidate (pending -> settled), left it awaiting review (with how far it got),
left a settled candidate as it was, or reversed it (confirmed). The walkthrough
read "You approved candidate #5: it is now awaiting review." of a candidate
that already was, and "it stays rejected: your vote did not change the
outcome." (two colons in one sentence)."""

import pytest
from candidate_factory import make_candidate
from django.urls import reverse

from scoring.models import Candidate


def said_after(client, c, **data):
    """The messages the page shows after posting `data` to the decide view."""
    r = client.post(reverse("candidate_decide", args=[c.pk]), data, follow=True)
    assert r.redirect_chain, f"not decided: {r.text[:300]}"
    return [str(m) for m in r.context["messages"]]


def one_message(said):
    assert len(said) == 1, said
    # One sentence, one colon at most: "it stays rejected: your vote did not..." read badly.
    assert said[0].split(". ")[0].count(":") <= 1, said[0]
    return said[0]


@pytest.fixture
def two_needed(agent):
    agent.required_approvals = 2
    agent.save()
    return agent


def test_a_first_of_two_approvals_says_it_still_awaits_review_and_how_far(cast, two_needed):
    c = make_candidate(two_needed)
    said = one_message(said_after(cast.client_for(cast.reviewer), c, decision="approve"))
    assert said.startswith(f"You approved candidate #{c.pk}: it still awaits review, with 1 of 2 approvals.")
    assert "is now awaiting review" not in said


def test_the_approval_that_settles_it_says_it_is_now_approved(cast, two_needed):
    c = make_candidate(two_needed)
    c.decide(cast.reviewer2, "approve")
    said = one_message(said_after(cast.client_for(cast.reviewer), c, decision="approve"))
    assert said.startswith(f"You approved candidate #{c.pk}: it is now approved.")


def test_a_rejection_that_settles_it_says_it_is_now_rejected(cast, agent):
    c = make_candidate(agent)
    said = one_message(said_after(cast.client_for(cast.reviewer), c, decision="reject", comment="wrong"))
    assert said.startswith(f"You rejected candidate #{c.pk}: it is now rejected.")


def test_a_first_of_two_rejections_says_how_far_it_got(cast, agent):
    agent.rejections_to_settle = 2
    agent.save()
    c = make_candidate(agent)
    said = one_message(said_after(cast.client_for(cast.reviewer), c, decision="reject", comment="wrong"))
    assert said.startswith(f"You rejected candidate #{c.pk}: it still awaits review, with 1 of 2 rejections.")


def test_a_skip_says_it_still_awaits_review_and_reveals_no_count(cast, two_needed):
    # Under blind review a skip reveals nothing of the others' votes: no count.
    two_needed.blind_review = True
    two_needed.save()
    c = make_candidate(two_needed)
    c.decide(cast.reviewer2, "approve")
    said = one_message(said_after(cast.client_for(cast.reviewer), c, decision="skip"))
    assert said.startswith(f"You skipped candidate #{c.pk}: it still awaits review.")
    assert "approval" not in said


def test_a_vote_that_leaves_a_settled_candidate_as_it_was_says_so_in_one_sentence(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer2, "reject", "No.")
    said = one_message(said_after(cast.client_for(cast.reviewer), c, decision="approve"))
    assert said.startswith(f"You approved candidate #{c.pk}: it stays rejected (your vote did not change the outcome).")
    said = one_message(said_after(cast.client_for(cast.reviewer), c, decision="reject", comment="Agreed."))
    assert said.startswith(f"You rejected candidate #{c.pk}: it stays rejected (your vote did not change the outcome).")


def test_a_confirmed_reversal_says_from_what_to_what(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer2, "approve")
    said = one_message(said_after(cast.client_for(cast.reviewer), c, confirm_reversal="reject", comment="No."))
    assert said.startswith(f"You rejected candidate #{c.pk}, which reverses it from approved to rejected.")
    c.refresh_from_db()
    assert c.status == Candidate.Status.REJECTED


def test_a_reversal_back_to_pending_says_it_awaits_review_again(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer, "approve")
    said = one_message(said_after(cast.client_for(cast.reviewer), c, confirm_reversal="skip"))
    assert said.startswith(
        f"You skipped candidate #{c.pk}, which reverses it from approved to pending again (awaiting review)."
    )


def test_an_edit_and_approve_says_where_it_stands_too(cast, two_needed):
    c = make_candidate(two_needed)
    r = cast.client_for(cast.reviewer).post(
        reverse("candidate_edit", args=[c.pk]), {"text": "Alice said the tomatoes need sun."}, follow=True
    )
    said = one_message([str(m) for m in r.context["messages"]])
    assert said.startswith(f"You edited and approved candidate #{c.pk}: it still awaits review, with 1 of 2 approvals.")


def test_it_says_when_nothing_else_waits(cast, agent):
    first, last = make_candidate(agent, divergence=2.0), make_candidate(agent, divergence=1.0)
    client = cast.client_for(cast.reviewer)
    assert said_after(client, first, decision="approve")[0].endswith("it is now approved. Here is the next one.")
    said = said_after(client, last, decision="approve")[0]
    assert said.endswith("it is now approved. Nothing else waits for your review.")


def test_bulk_says_where_each_candidate_now_stands(cast, two_needed):
    waiting, settles, stays = (make_candidate(two_needed, divergence=d) for d in (3.0, 2.0, 1.0))
    settles.decide(cast.reviewer2, "approve")
    stays.decide(cast.reviewer2, "reject", "No.")
    r = cast.client_for(cast.reviewer).post(
        reverse("candidate_bulk"), {"ids": [waiting.pk, settles.pk, stays.pk], "decision": "approve"}, follow=True
    )
    said = " ".join(str(m) for m in r.context["messages"])
    assert (
        f"You approved 3 candidates: #{waiting.pk}, #{settles.pk}, #{stays.pk}. "
        f"Now approved: #{settles.pk}. Still awaiting review: #{waiting.pk}. "
        f"Unchanged, still rejected: #{stays.pk}."
    ) in said


def test_an_edit_of_an_approved_candidate_says_its_text_is_now_the_one_to_be_trained(cast, agent):
    """One approval needed, rob's: rita's edit keeps it approved, with her text.
    Before, the page said her vote "did not change the outcome", while what
    would be trained had changed (walkthrough)."""
    c = make_candidate(agent)
    c.decide(cast.reviewer2, "approve")
    r = cast.client_for(cast.reviewer).post(
        reverse("candidate_edit", args=[c.pk]), {"text": "Rita's better answer."}, follow=True)
    said = one_message([str(m) for m in r.context["messages"]])
    assert said.startswith(
        f"You edited and approved candidate #{c.pk}: it stays approved, with your text as the one to be trained.")
    c.refresh_from_db()
    assert c.training_text == "Rita's better answer." and c.status == Candidate.Status.APPROVED
