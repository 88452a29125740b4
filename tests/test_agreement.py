"""Reviewers' agreement: Cohen's kappa (scoring.maths) against values worked
out by hand, the per-pair and per-reviewer figures, and the agreement page."""

import math

import pytest
from candidate_factory import make_candidate
from django.urls import reverse

from scoring.maths import cohens_kappa
from scoring.models.review import agreement

A, R, S = "approve", "reject", "skip"


# --- kappa, by hand -----------------------------------------------------------

def test_kappa_of_a_textbook_table():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    # p_o = 35/50 = 0.7; first says yes 25/50, second 30/50:
    # p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7-0.5)/(1-0.5) = 0.4.
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert math.isclose(cohens_kappa(pairs), 0.4)


def test_kappa_of_ten_reviews():
    # Both approve 6, both reject 2, one each way 1 + 1: p_o = 0.8;
    # each approves 7/10: p_e = 0.7*0.7 + 0.3*0.3 = 0.58;
    # kappa = 0.22 / 0.42 = 11/21.
    pairs = [(A, A)] * 6 + [(R, R)] * 2 + [(A, R), (R, A)]
    assert math.isclose(cohens_kappa(pairs), 11 / 21)


def test_kappa_is_one_for_full_agreement_and_negative_below_chance():
    assert cohens_kappa([(A, A), (R, R), (A, A)]) == 1.0
    # Always opposite, half each: p_o = 0, p_e = 0.5: kappa = -1.
    assert cohens_kappa([(A, R), (R, A)]) == -1.0


def test_kappa_does_not_apply_without_items_or_variety():
    assert cohens_kappa([]) is None
    # Both approve everything: p_e = 1, nothing to tell from chance.
    assert cohens_kappa([(A, A), (A, A)]) is None


# --- pairs and reviewers ----------------------------------------------------------

def test_pairs_and_reviewers_from_decisions():
    rows = [
        (1, "rita", A), (1, "rob", A), (1, "sam", R),
        (2, "rita", R), (2, "rob", A),
        (3, "rita", A), (3, "rob", A),
        (4, "rita", S), (4, "rob", A),  # a skip compares nothing
        (5, "sam", A),
    ]
    pairs, reviewers = agreement(rows)

    by_names = {(p.first, p.second): p for p in pairs}
    assert set(by_names) == {("rita", "rob"), ("rita", "sam"), ("rob", "sam")}
    rr = by_names["rita", "rob"]
    # Candidates 1, 2, 3: agree on 1 and 3. p_o = 2/3; rita approves 2/3,
    # rob 3/3: p_e = 2/3*1 + 1/3*0 = 2/3; kappa = 0.
    assert (rr.compared, rr.agreed) == (3, 2)
    assert math.isclose(rr.rate, 2 / 3)
    assert math.isclose(rr.kappa, 0.0, abs_tol=1e-12)
    assert rr.disagreements == [(2, R, A)]
    assert by_names["rita", "sam"].disagreements == [(1, A, R)]
    # One item, approve vs reject: p_o = 0, p_e = 1*0 + 0*1 = 0: kappa = 0.
    assert by_names["rita", "sam"].kappa == 0.0
    stats = {r.name: r for r in reviewers}
    assert stats["rita"].decisions == 3 and stats["sam"].decisions == 2
    # rita: 3 with rob (2 agreed) + 1 with sam (0): 2 of 4.
    assert (stats["rita"].compared, stats["rita"].agreed) == (4, 2)
    assert (stats["sam"].compared, stats["sam"].agreed) == (2, 0)


# --- the page ---------------------------------------------------------------------

def test_the_page_shows_pairs_reviewers_kappa_and_linked_disagreements(cast, agent):
    agent.required_approvals, agent.rejections_to_settle = 3, 3  # nothing settles on the way
    agent.save()
    candidates = [make_candidate(agent, divergence=float(10 - i)) for i in range(4)]
    # rita/rob: agree on 0 (approve), 1 (reject), 2 (approve); disagree on 3.
    said = {"rita": [A, R, A, A], "rob": [A, R, A, R]}
    for name, decisions in said.items():
        user = cast.reviewer if name == "rita" else cast.reviewer2
        for c, decision in zip(candidates, decisions):
            c.decide(user, decision, "why" if decision == R else "")

    r = cast.client_for(cast.viewer).get(reverse("review_agreement"))

    assert r.status_code == 200
    (pair,) = r.context["pairs"]
    assert (pair.first, pair.second, pair.compared, pair.agreed) == ("rita", "rob", 4, 3)
    # p_o = 3/4; rita approves 3/4, rob 2/4: p_e = 3/4*2/4 + 1/4*2/4 = 1/2;
    # kappa = (3/4 - 1/2) / (1/2) = 0.5.
    assert math.isclose(pair.kappa, 0.5)
    html = r.text
    assert "Agreed on <strong>3 of 4</strong> (75%)" in html and "kappa <strong>0.50</strong>" in html
    assert f'href="{reverse("candidate_detail", args=[candidates[3].pk])}">#{candidates[3].pk}</a>' in html
    assert f">#{candidates[0].pk}</a>" not in html  # agreed: not listed
    rita = next(x for x in r.context["reviewers"] if x.name == "rita")
    assert (rita.decisions, rita.compared, rita.agreed) == (4, 4, 3)


def test_blind_review_keeps_pending_candidates_out_for_those_who_have_not_decided(cast, agent):
    agent.blind_review, agent.required_approvals, agent.rejections_to_settle = True, 3, 3
    agent.save()
    c = make_candidate(agent)
    c.decide(cast.reviewer2, "approve")
    c.decide(cast.operator, "reject", "no")

    pairs = cast.client_for(cast.reviewer).get(reverse("review_agreement")).context["pairs"]
    assert pairs == []  # rita has not decided it: rob's and otto's decisions stay hidden
    assert len(cast.client_for(cast.reviewer2).get(reverse("review_agreement")).context["pairs"]) == 1


@pytest.mark.parametrize("who", ["outsider"])
def test_the_page_needs_the_viewer_role(cast, who):
    assert cast.client_for(getattr(cast, who)).get(reverse("review_agreement")).status_code == 403


def test_it_filters_by_agent_and_says_when_there_is_nothing(cast, agent):
    r = cast.client_for(cast.viewer).get(reverse("review_agreement"), {"agent": agent.pk})
    assert r.context["agent"] == agent
    assert "No decisions to compare yet" in r.text


def test_an_agent_it_cannot_find_compares_nothing_and_says_so(cast, agent):
    agent.required_approvals, agent.rejections_to_settle = 3, 3  # nothing settles on the way
    agent.save()
    c = make_candidate(agent)
    c.decide(cast.reviewer, "approve")
    c.decide(cast.reviewer2, "reject", "not what the user asked")
    client = cast.client_for(cast.viewer)
    assert client.get(reverse("review_agreement")).context["pairs"]  # all agents: something to compare

    r = client.get(reverse("review_agreement"), {"agent": "999"})
    assert r.context["pairs"] == [] and r.context["reviewers"] == []
    assert "Agent “999”: there is no such agent." in r.text
    assert "No decisions to compare yet" not in r.text  # the notice says why, not "nothing yet"
    assert 'value="999" selected' in r.text  # the select keeps what was typed
    assert 'href="/review/agreement/" id="filter-clear"' in r.text
