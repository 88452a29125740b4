"""Candidate verbs: decide, reservations, the queue, edit-and-approve, comments."""

from datetime import timedelta

import pytest
from candidate_factory import make_candidate, on_sqlite, run_in_threads
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.utils import timezone

from scoring.client import InferenceClient
from scoring.editing import edit_and_approve
from scoring.models import Activity, Agent, Candidate, Review
from scoring.models.candidates import settled_status, settling_rule
from scoring.outbox import send_to_training

postgres_only = pytest.mark.skipif(
    on_sqlite(), reason="row locking under concurrency needs PostgreSQL (CI runs it there)"
)


def transitions(candidate):
    return Activity.objects.filter(
        verb="status changed", target_type="candidate", target_id=str(candidate.pk)
    )


def test_it_approves_once_enough_reviewers_approve(cast, agent):
    agent.required_approvals = 2
    agent.save()
    c = make_candidate(agent)

    c.decide(cast.reviewer, "approve")
    assert c.status == Candidate.Status.PENDING and c.decided_at is None

    c.decide(cast.reviewer2, Review.Decision.APPROVE)
    assert c.status == Candidate.Status.APPROVED
    assert c.decided_at is not None
    assert Activity.objects.filter(verb="approved", target_id=str(c.pk)).count() == 2
    assert list(transitions(c).values_list("detail", flat=True)) == [{"from": "pending", "to": "approved"}]


def test_it_needs_a_comment_to_reject(cast, agent):
    c = make_candidate(agent)
    with pytest.raises(ValidationError) as e:
        c.decide(cast.reviewer, "reject", comment="   ")
    assert "comment" in e.value.error_dict
    assert not Review.objects.exists()
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING

    c.decide(cast.reviewer, "reject", comment="made up a fact")
    assert c.status == Candidate.Status.REJECTED
    assert c.reviews.get().comment == "made up a fact"


def test_it_rejects_when_any_reviewer_rejects(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer, "approve")
    assert c.status == Candidate.Status.APPROVED
    # Moving a settled candidate is a reversal: confirmed (test_review_reversals.py).
    c.decide(cast.reviewer2, "reject", comment="wrong tone", confirm_reversal=True)
    assert c.status == Candidate.Status.REJECTED
    assert [t.detail["to"] for t in transitions(c).order_by("id")] == ["approved", "rejected"]


def test_the_agent_says_how_many_rejections_settle_it(cast, agent):
    """Defect 3: one rejection settled a candidate that needed two approvals,
    with no say. The agent's rejections_to_settle decides, and the default
    (1) keeps the old rule."""
    agent.required_approvals, agent.rejections_to_settle = 2, 2
    agent.save()
    c = make_candidate(agent)
    c.decide(cast.reviewer, "reject", comment="vague")
    assert c.status == Candidate.Status.PENDING  # one rejection of two
    c.decide(cast.operator, "approve")
    c.decide(cast.viewer, "approve")  # the model verb does not check roles; the views do
    assert c.status == Candidate.Status.APPROVED  # two approvals; one rejection does not outweigh
    c.decide(cast.reviewer2, "reject", comment="agree with rita", confirm_reversal=True)
    assert c.status == Candidate.Status.REJECTED  # the second rejection settles it


@pytest.mark.parametrize("approvals, rejections, expected", [
    (0, 0, "pending"), (1, 0, "pending"), (2, 0, "approved"), (5, 0, "approved"),
    (2, 1, "approved"), (0, 1, "pending"), (1, 2, "rejected"), (9, 2, "rejected"),
])
def test_settled_status_follows_the_rule(approvals, rejections, expected):
    agent = Agent(required_approvals=2, rejections_to_settle=2)
    assert settled_status(approvals, rejections, agent) == expected


def test_the_rule_in_words():
    assert settling_rule(Agent(required_approvals=2, rejections_to_settle=1)) == (
        "Needs 2 approvals; 1 rejection rejects it.")
    assert settling_rule(Agent(required_approvals=1, rejections_to_settle=3)) == (
        "Needs 1 approval; 3 rejections reject it.")


def test_next_for_moves_past_a_candidate_and_wraps(cast, agent):
    a, b, c = (make_candidate(agent, divergence=d) for d in (3.0, 2.0, 2.0))
    nxt = Candidate.objects.next_for
    assert nxt(cast.reviewer) == a
    assert nxt(cast.reviewer, after=a) == b
    assert nxt(cast.reviewer, after=b) == c  # same divergence: by id
    assert nxt(cast.reviewer, after=c) == a  # back to the top
    b.decide(cast.reviewer, "skip")
    assert nxt(cast.reviewer, after=a) == c


def test_it_lets_a_reviewer_change_their_mind(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer, "reject", comment="hmm")
    c.decide(cast.reviewer, "approve", confirm_reversal=True)
    assert c.status == Candidate.Status.APPROVED
    assert c.reviews.count() == 1
    assert c.reviews.get().decision == Review.Decision.APPROVE


def test_it_skips_without_settling(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer, "skip")
    assert c.status == Candidate.Status.PENDING
    assert Candidate.objects.next_for(cast.reviewer) is None
    assert Candidate.objects.next_for(cast.reviewer2) == c


def test_it_refuses_unknown_decisions(cast, agent):
    c = make_candidate(agent)
    with pytest.raises(ValidationError) as e:
        c.decide(cast.reviewer, "maybe")
    assert "decision" in e.value.error_dict


def test_it_keeps_trained_and_sent_candidates_final(cast, agent):
    trained = make_candidate(agent, status=Candidate.Status.TRAINED)
    with pytest.raises(ValidationError):
        trained.decide(cast.reviewer, "reject", comment="too late")
    trained.refresh_from_db()
    assert trained.status == Candidate.Status.TRAINED

    sent = make_candidate(agent, status=Candidate.Status.APPROVED)
    job = send_to_training(agent, cast.operator)
    assert job is not None
    with pytest.raises(ValidationError):
        sent.decide(cast.reviewer2, "reject", comment="changed my mind")
    sent.refresh_from_db()
    assert sent.status == Candidate.Status.APPROVED
    assert not sent.reviews.exists()


def test_it_reopens_decisions_when_the_job_failed(cast, agent):
    c = make_candidate(agent, status=Candidate.Status.APPROVED)
    job = send_to_training(agent, cast.operator)
    job.mark_failed("the server said no")
    c.decide(cast.reviewer, "reject", comment="on reflection, no", confirm_reversal=True)
    assert c.status == Candidate.Status.REJECTED


def test_it_gives_the_next_candidate_highest_divergence_first(cast, agent):
    low = make_candidate(agent, divergence=1.0)
    high = make_candidate(agent, divergence=5.0)
    mid = make_candidate(agent, divergence=3.0)
    assert Candidate.objects.next_for(cast.reviewer) == high
    assert Candidate.objects.next_for(cast.reviewer, agent=agent) == high

    assert high.reserve(cast.reviewer)
    # rita holds `high`: rob gets the next one, rita keeps getting hers.
    assert Candidate.objects.next_for(cast.reviewer2) == mid
    assert Candidate.objects.next_for(cast.reviewer) == high
    assert not high.reserve(cast.reviewer2)
    high.refresh_from_db()
    assert high.reserved_by == cast.reviewer

    high.decide(cast.reviewer, "approve")
    high.refresh_from_db()
    assert high.reserved_by is None  # deciding releases the hold
    assert Candidate.objects.next_for(cast.reviewer) == mid
    assert set(Candidate.objects.reviewable_by(cast.reviewer2)) == {mid, low}


def test_it_frees_expired_reservations(cast, agent):
    c = make_candidate(agent)
    assert c.reserve(cast.reviewer)
    Candidate.objects.filter(pk=c.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))
    assert Candidate.objects.next_for(cast.reviewer2) == c
    assert c.reserve(cast.reviewer2)
    c.refresh_from_db()
    assert c.reserved_by == cast.reviewer2
    assert c.reserved_until > timezone.now() + timedelta(minutes=1)


def test_a_settled_candidate_is_held_by_no_one(cast, agent):
    # The default rule: one approval settles it. Rob holds it; Rita decides.
    c = make_candidate(agent)
    assert c.reserve(cast.reviewer2)

    c.decide(cast.reviewer, "approve")

    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED
    assert (c.reserved_by, c.reserved_until) == (None, None)


def test_it_releases_only_your_own_reservation(cast, agent):
    c = make_candidate(agent)
    c.reserve(cast.reviewer)
    assert not c.release(cast.reviewer2)
    c.refresh_from_db()
    assert c.reserved_by == cast.reviewer
    assert c.release(cast.reviewer)
    c.refresh_from_db()
    assert c.reserved_by is None
    assert not Activity.objects.filter(verb__in=["reserved", "released"]).exists()


def test_it_edits_and_approves_with_the_servers_token_ids(cast, agent):
    c = make_candidate(agent, response_text="Alice said the tomatos need sun.")
    original_ids = list(c.continuation_ids)
    corrected = "Alice said the tomatoes need more sun and less water."

    edit_and_approve(c, cast.reviewer, corrected)

    c.refresh_from_db()
    with InferenceClient.for_agent(agent) as client:
        expected = client.tokenize(f"<|im_start|>assistant\n{corrected}<|im_end|>\n")
    assert c.edited_ids == expected
    assert c.training_continuation_ids == expected
    assert c.continuation_ids == original_ids  # the original is kept beside the edit
    assert c.response_text == "Alice said the tomatos need sun."
    assert c.edited_text == corrected
    assert c.edited_by == cast.reviewer and c.edited_at is not None
    assert c.status == Candidate.Status.APPROVED
    assert c.reviews.get().decision == Review.Decision.APPROVE
    assert Activity.objects.filter(verb="edited", target_id=str(c.pk)).exists()


def test_it_refuses_an_empty_edit(cast, agent, ref):
    c = make_candidate(agent)
    posts_before = ref.stats()["total_calls"].get("tokenize", 0)
    with pytest.raises(ValidationError) as e:
        edit_and_approve(c, cast.reviewer, "  \n ")
    assert "text" in e.value.error_dict
    c.refresh_from_db()
    assert c.edited_ids is None and c.status == Candidate.Status.PENDING
    assert ref.stats()["total_calls"].get("tokenize", 0) == posts_before


def test_it_adds_comments(cast, agent):
    c = make_candidate(agent)
    with pytest.raises(ValidationError) as e:
        c.add_comment(cast.reviewer, "")
    assert "text" in e.value.error_dict
    comment = c.add_comment(cast.reviewer2, "  looks right to me ")
    assert comment.text == "looks right to me"
    assert list(c.comments.values_list("author__username", flat=True)) == ["rob"]
    assert Activity.objects.filter(verb="commented on", actor=cast.reviewer2).exists()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_it_settles_concurrent_approvals_once(ref, roles):
    agent = Agent.objects.create(name="poc", base_url=ref.base_url, model="memscore-ref")
    group = Group.objects.get(name="reviewer")
    reviewers = []
    for i in range(8):
        user = User.objects.create_user(f"rev{i}")
        user.groups.add(group)
        reviewers.append(user)
    c = make_candidate(agent)

    results = run_in_threads(len(reviewers), lambda i: Candidate.objects.get(pk=c.pk).decide(reviewers[i], "approve"))

    assert not [r for r in results if isinstance(r, Exception)], results
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED
    assert c.reviews.count() == len(reviewers)
    assert transitions(c).count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_it_lets_one_of_many_reviewers_reserve(ref):
    agent = Agent.objects.create(name="poc", base_url=ref.base_url, model="memscore-ref")
    users = [User.objects.create_user(f"rev{i}") for i in range(6)]
    c = make_candidate(agent)

    results = run_in_threads(len(users), lambda i: Candidate.objects.get(pk=c.pk).reserve(users[i]))

    assert results.count(True) == 1, results
    c.refresh_from_db()
    assert c.reserved_by == users[results.index(True)]
