"""Who the review queue holds candidates for (members of the reviewer role
only), the keyboard card only for those who can decide, and filters that
cannot apply named rather than silently ignored (defects 5, 6, 7)."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from scoring.models import Activity, Candidate
from tests.candidate_factory import make_candidate


def queue_url(**query):
    from urllib.parse import urlencode

    return reverse("review_queue") + (f"?{urlencode(query)}" if query else "")


# --- holds (defect 5) -----------------------------------------------------------

@pytest.mark.parametrize("who", ["viewer", "operator"])
def test_looking_at_the_queue_holds_nothing_outside_the_reviewer_role(cast, agent, who):
    c = make_candidate(agent)
    client = cast.client_for(getattr(cast, who))
    r = client.get(queue_url())
    assert r.context["candidate"].pk == c.pk
    assert "You are looking: the queue holds a candidate only for members of the reviewer role." in r.text
    # Next candidate (?after=) on the only one: still shown, still not held.
    r = client.get(queue_url(after=c.pk))
    assert r.context["candidate"].pk == c.pk
    c.refresh_from_db()
    assert c.reserved_by is None
    # So a reviewer is neither told it is held nor kept from it.
    r = cast.client_for(cast.reviewer).get(queue_url())
    assert "Held by others" not in r.text and r.context["candidate"].pk == c.pk


def test_an_operator_in_the_reviewer_role_holds_like_a_reviewer(cast, agent):
    c = make_candidate(agent)
    cast.operator.groups.add(Group.objects.get(name="reviewer"))
    cast.client_for(cast.operator).get(queue_url())
    c.refresh_from_db()
    assert c.reserved_by == cast.operator


def test_an_operator_may_still_decide_without_holding(cast, agent):
    c = make_candidate(agent)
    client = cast.client_for(cast.operator)
    assert 'value="approve"' in client.get(queue_url()).text
    client.post(reverse("candidate_decide", args=[c.pk]), {"decision": "approve"})
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED


def test_holds_are_not_logged(cast, agent):
    c = make_candidate(agent)
    client = cast.client_for(cast.reviewer)
    client.get(queue_url())
    client.get(queue_url(after=c.pk))
    c.refresh_from_db()
    assert c.reserved_by == cast.reviewer  # the only one: taken again
    assert not Activity.objects.filter(verb__in=["reserved", "released"]).exists()


# --- the keyboard card (defect 6) -------------------------------------------------

def test_a_viewer_sees_no_reviewer_shortcuts(cast, agent):
    c = make_candidate(agent)
    client = cast.client_for(cast.viewer)
    for url in (queue_url(), reverse("candidate_detail", args=[c.pk])):
        html = client.get(url).text
        assert "deciding needs the reviewer role" in html
        assert "<kbd>a</kbd> approve" not in html and "<kbd>e</kbd> edit" not in html
        assert 'data-key="a"' not in html


def test_a_reviewer_sees_the_shortcuts(cast, agent):
    c = make_candidate(agent)
    html = cast.client_for(cast.reviewer).get(reverse("candidate_detail", args=[c.pk])).text
    assert "<kbd>a</kbd> approve" in html and 'data-key="a"' in html


# --- filters that cannot apply (defect 7) ------------------------------------------

def test_a_bad_divergence_filter_is_named_and_matches_nothing(cast, agent):
    make_candidate(agent, divergence=3.0)
    r = cast.client_for(cast.viewer).get(reverse("candidate_list") + "?min_divergence=abc")
    assert "Divergence from “abc”: not a number." in r.text
    assert "No candidates shown" in r.text
    assert list(r.context["page"].object_list) == []


def test_an_unknown_agent_is_named_on_the_list(cast, agent):
    make_candidate(agent)
    r = cast.client_for(cast.viewer).get(reverse("candidate_list") + "?agent=999")
    assert "Agent “999”: there is no such agent." in r.text
    assert list(r.context["page"].object_list) == []


def test_the_list_takes_an_agent_by_name_as_the_queue_does(cast, agent):
    c = make_candidate(agent)
    r = cast.client_for(cast.viewer).get(reverse("candidate_list") + f"?agent={agent.name}")
    assert [x.pk for x in r.context["page"].object_list] == [c.pk]
    assert 'id="filter-errors"' not in r.text


def test_good_filters_say_nothing(cast, agent):
    make_candidate(agent, divergence=3.0)
    r = cast.client_for(cast.viewer).get(reverse("candidate_list") + f"?min_divergence=1&agent={agent.pk}")
    assert 'id="filter-errors"' not in r.text and len(r.context["page"].object_list) == 1


def test_the_queue_names_an_unknown_agent_and_holds_nothing(cast, agent):
    c = make_candidate(agent)
    r = cast.client_for(cast.reviewer).get(queue_url(agent=999))
    assert "Agent “999”: there is no such agent." in r.text
    assert "No candidates shown" in r.text
    assert "candidate" not in r.context or r.context.get("candidate") is None
    c.refresh_from_db()
    assert c.reserved_by is None
