"""Blind review, one rule (scoring/models/candidates.py blind_to/hidden_from)
seen the same way on the candidate page, the list, the activity log (and the
home page's recent activity) and the agreement page: hidden from a reviewer who has not approved or rejected a
pending candidate; shown once it is settled, and always to those who do not review."""

import pytest
from candidate_factory import decide, detail_url, make_candidate, queue_url
from django.urls import reverse

from scoring.models import Candidate
from scoring.models.candidates import blind_to, hidden_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def blind(agent):
    agent.blind_review, agent.required_approvals, agent.rejections_to_settle = True, 3, 2
    agent.save()
    return agent


PAGES = ("page", "list", "activity", "agreement", "home")


def seen(cast, user, candidate):
    """Whether `user` sees rob's decision on each of the pages (the home page's recent activity too)."""
    client = cast.client_for(user)
    log = client.get(reverse("activity_list")).text
    recent = client.get(reverse("home")).context["activity"]
    return {
        "page": "rob&#x27;s reason" in client.get(detail_url(candidate)).text,
        "list": "Blind review: hidden until" not in client.get(reverse("candidate_list")).text,
        "activity": "<td>rob</td>" in log and "rob&#x27;s reason" in log,
        "agreement": bool(client.get(reverse("review_agreement")).context["pairs"]),
        "home": any(entry.actor_name == "rob" and entry.verb == "rejected" for entry in recent),
    }


def test_the_rule(cast, blind):
    c = make_candidate(blind)
    assert blind_to(cast.reviewer, c, None) and blind_to(cast.reviewer, c, "skip")
    assert not blind_to(cast.reviewer, c, "approve") and not blind_to(cast.reviewer, c, "reject")
    assert not blind_to(cast.viewer, c, None)  # does not review: nothing to bias
    assert hidden_from(cast.viewer) is None
    assert list(hidden_from(cast.reviewer)) == [c]
    c.decide(cast.reviewer, "approve")
    assert list(hidden_from(cast.reviewer)) == []  # decided: the others show
    assert list(hidden_from(cast.reviewer2)) == [c]
    Candidate.objects.filter(pk=c.pk).update(status=Candidate.Status.REJECTED)
    c.refresh_from_db()
    assert not blind_to(cast.reviewer2, c, None)  # settled: nothing left to bias
    assert list(hidden_from(cast.reviewer2)) == []

def test_every_page_hides_the_same_and_shows_the_same(cast, blind):
    c = make_candidate(blind)
    c.decide(cast.reviewer2, "reject", "rob's reason")
    c.decide(cast.operator, "approve", "otto agrees")

    assert seen(cast, cast.reviewer, c) == dict.fromkeys(PAGES, False)
    # The viewer does not review: everything shows (the agreement page compares rob and otto).
    assert seen(cast, cast.viewer, c) == dict.fromkeys(PAGES, True)

    c.decide(cast.operator, "reject", "on second thought")  # a second rejection settles it
    c.refresh_from_db()
    assert c.status == Candidate.Status.REJECTED
    assert seen(cast, cast.reviewer, c) == dict.fromkeys(PAGES, True)


def test_blind_review_hides_others_decisions_until_i_decide(cast, blind):
    c = make_candidate(blind)
    c.decide(cast.reviewer2, "reject", "rob's secret reason")
    c.decide(cast.operator, "approve")
    c.add_comment(cast.operator, "otto's note")
    c.refresh_from_db()
    client = cast.client_for(cast.reviewer)

    for url in (detail_url(c), queue_url()):
        page = client.get(url).text
        assert "rob's secret reason" not in page and "otto&#x27;s note" not in page
        assert ">rob<" not in page and ">otto<" not in page
        assert "2 decisions by others are hidden until you approve or reject" in page
    fragment = client.get(detail_url(c), HTTP_HX_REQUEST="true").text  # the polled panel
    assert "rob's secret reason" not in fragment and "hidden until you approve or reject" in fragment
    assert "hidden" in client.get(reverse("candidate_list")).text
    # A skip is no opinion: still hidden.
    decide(client, c, "skip")
    assert "rob's secret reason" not in client.get(detail_url(c)).text

    decide(client, c, "approve")
    page = client.get(detail_url(c)).text
    assert "rob&#x27;s secret reason" in page and "otto&#x27;s note" in page
    assert "hidden until" not in page


def test_without_blind_review_decisions_show_at_once(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer2, "reject", "rob's reason")
    page = cast.client_for(cast.reviewer).get(detail_url(c)).text
    assert "rob&#x27;s reason" in page and "hidden until" not in page


def test_a_reversal_back_to_pending_does_not_say_how_others_decided(cast, blind):
    """A reversal that sends a candidate back to pending hides again the
    decisions that had settled it, and the log's record of how it had
    settled with them: before, an undecided reviewer saw otto's "status
    changed" (from pending to approved: his was the deciding approval) and
    "reversed the decision on" (decision: reject) in the log and on the home
    page, and "Did" offered both verbs."""
    blind.required_approvals, blind.rejections_to_settle = 2, 3
    blind.save()
    c = make_candidate(blind)
    c.decide(cast.reviewer2, "approve")
    c.decide(cast.operator, "approve")  # settles it: approved
    c.decide(cast.operator, "reject", "on second thought", confirm_reversal=True)  # 1 of 2 approvals: pending
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING

    def told(user, **params):
        """What `user` is told of the candidate's entries: on the log, on the home page, in "Did"."""
        client = cast.client_for(user)
        log = client.get(reverse("activity_list"), params).context
        recent = client.get(reverse("home")).context["activity"]
        return (
            {e.verb for e in log["page"].object_list if e.target_id == str(c.pk)},
            {e.verb for e in recent if e.target_id == str(c.pk)},
            {value for value, _ in log["verbs"]},
        )

    settling = {"approved", "rejected", "status changed", "reversed the decision on"}
    assert told(cast.reviewer) == (set(), set(), set())
    assert told(cast.viewer) == (settling, settling, settling)  # does not review: nothing to bias
    assert told(cast.operator)[0] == settling  # he decided
    # Asked for by hand (an old link), it is named as no choice.
    html = cast.client_for(cast.reviewer).get(reverse("activity_list"), {"verb": "status changed"}).text
    assert "<li>Did “status changed”: not one of the choices.</li>" in html

    c.decide(cast.reviewer, "reject", "rita's own reason")  # rita decides (still pending): nothing is hidden from her
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING
    assert told(cast.reviewer) == (settling, settling, settling)


def test_another_reviewers_edit_is_hidden_as_their_approval_is(cast, blind):
    """"Edit and approve" is an approval: the log hides it ("edited"), and the
    page and the list now do too. Before, an undecided reviewer read "Edited
    by rob" and his text on the page (and in the edit form), and the list's
    "edited" badge, so knew rob had approved."""
    c = make_candidate(blind)
    c.approve_edited(cast.reviewer2, "Rob's corrected answer.", [1, 2, 3])
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING

    def edit_seen(user):
        client = cast.client_for(user)
        rows = client.get(reverse("candidate_list")).text.split("<tbody>")[1]
        return {
            "page": "Edited by rob" in client.get(detail_url(c)).text,
            "text": any("Rob&#x27;s corrected answer." in client.get(url).text for url in (detail_url(c), queue_url())),
            "list": '<span class="badge">edited</span>' in rows,
        }

    assert edit_seen(cast.reviewer) == {"page": False, "text": False, "list": False}
    # Her edit form starts from the response itself.
    assert cast.client_for(cast.reviewer).get(detail_url(c)).context["edit_form"].initial["text"] == c.response_text
    assert edit_seen(cast.viewer) == {"page": True, "text": True, "list": True}
    c.decide(cast.reviewer2, "skip")  # rob takes back his approval: blind again, but the edit is his own
    assert blind_to(cast.reviewer2, c, "skip")
    assert edit_seen(cast.reviewer2) == {"page": True, "text": True, "list": True}

    decide(cast.client_for(cast.reviewer), c, "reject", "rita's own reason")  # still pending (1 of 2 rejections)
    assert edit_seen(cast.reviewer) == {"page": True, "text": True, "list": True}


def test_an_approval_counts_only_toward_the_text_its_reviewer_saw(cast, blind):
    """Rob edits and approves; rita, under blind review, sees the response
    itself and approves it. Before, her approval counted toward rob's edit:
    with two approvals needed, the candidate went to training with a text
    only rob had read. Now it waits, and both the message and the page say
    why; once she has read the edit, approving again counts."""
    blind.required_approvals = 2
    blind.save()
    c = make_candidate(blind)
    c.approve_edited(cast.reviewer2, "Rob's corrected answer.", [1, 2, 3])
    rita = cast.client_for(cast.reviewer)
    said = decide(rita, c, "approve", follow=True)
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING
    words = " ".join(str(m) for m in said.context["messages"])
    assert "with 1 of 2 approvals" in words
    assert "rob had edited the response, which blind review hid from you" in words
    page = rita.get(detail_url(c)).text
    assert "Rob&#x27;s corrected answer." in page  # she has decided: the edit shows
    assert "the response before rob's edit: not counted" in page
    assert "approve again to approve it" in page
    assert "<strong>1 of 2</strong> approvals" in page

    decide(rita, c, "approve")
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED
    assert "not counted" not in rita.get(detail_url(c)).text


def test_an_edit_after_an_approval_needs_approving_again(cast, agent):
    """Without blind review too: rita approved the response, then rob edited
    it. Her approval was not of the edit (before, it was counted for it)."""
    agent.required_approvals = 2
    agent.save()
    c = make_candidate(agent)
    c.decide(cast.reviewer, "approve")
    c.approve_edited(cast.reviewer2, "Rob's corrected answer.", [1, 2, 3])
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING
    listed = cast.client_for(cast.viewer).get(reverse("candidate_list")).context["page"].object_list
    assert [x.approvals for x in listed if x.pk == c.pk] == [1]
    # Approving again is approving the edit, now in front of her.
    c.decide(cast.reviewer, "approve")
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED


def test_an_edit_of_an_approved_candidate_asks_to_confirm_the_reversal(cast, agent):
    """Editing a candidate others approved takes their approvals away from
    it: the page asks first, as for any vote that reverses a settled one."""
    agent.required_approvals = 2
    agent.save()
    c = make_candidate(agent)
    c.decide(cast.reviewer, "approve")
    c.decide(cast.operator, "approve")  # an operator reviews too
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED
    assert c.status_after_edit(cast.reviewer2) == Candidate.Status.PENDING
    answer = cast.client_for(cast.reviewer2).post(
        reverse("candidate_edit", args=[c.pk]), {"text": "Rob's corrected answer."})
    assert "Confirm: save the edit, approve and reverse it" in answer.text
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED and not c.is_edited


def test_a_bulk_approval_says_which_did_not_count(cast, blind):
    blind.required_approvals = 2
    blind.save()
    edited, plain = make_candidate(blind), make_candidate(blind)
    edited.approve_edited(cast.reviewer2, "Rob's corrected answer.", [1, 2, 3])
    from scoring.models.candidates import decide_each

    done = decide_each([edited, plain], cast.reviewer, "approve")
    assert done.uncounted == [edited]
    assert (f"does not count toward the edit that would be trained (open it to read the edit and approve it there): "
            f"#{edited.pk}.") in done.where_they_stand()


def test_a_bulk_approval_without_blind_review_is_of_the_response_the_list_shows(cast, agent):
    """Re-check walkthrough: the list shows a candidate's response, never its
    edit, and a bulk approval counted toward an edit no one had read there;
    the candidate was trained with it. The editor's own bulk approval still
    counts toward their edit."""
    from scoring.models.candidates import decide_each

    agent.required_approvals = 2
    agent.save()
    edited = make_candidate(agent)
    edited.approve_edited(cast.reviewer2, "Rob's corrected answer.", [1, 2, 3])
    done = decide_each([edited], cast.reviewer, "approve")
    edited.refresh_from_db()
    assert edited.status == Candidate.Status.PENDING and done.uncounted == [edited]
    done = decide_each([edited], cast.reviewer2, "approve")  # rob's own edit
    assert done.uncounted == [] and edited.reviews.get(reviewer=cast.reviewer2).approved_edit == edited.edited_at


def test_an_approval_from_a_page_opened_before_an_edit_is_of_what_it_showed(cast, agent):
    """Re-check walkthrough: rita's page showed the response; rob edited it
    meanwhile; her Approve counted toward his edit, which was trained. The
    form says what the page showed: her approval is of the response."""
    agent.required_approvals = 2
    agent.save()
    c = make_candidate(agent)
    rita = cast.client_for(cast.reviewer)
    form = rita.get(detail_url(c)).context["decide_form"]
    page = rita.get(detail_url(c)).text
    assert '<input type="hidden" name="seen_edit" value="">' in page and form is not None
    c.approve_edited(cast.reviewer2, "Rob's corrected answer.", [1, 2, 3])
    said = decide(rita, c, "approve", seen_edit="", follow=True)
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING
    assert "rob edited the response after your page showed it" in " ".join(str(m) for m in said.context["messages"])
    # Her page now shows the edit; approving from it counts.
    page = rita.get(detail_url(c)).text
    assert f'name="seen_edit" value="{c.edited_at.isoformat()}"' in page
    decide(rita, c, "approve", seen_edit=c.edited_at.isoformat())
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED


def test_an_edit_hidden_by_blind_review_is_never_taken_as_seen(cast, blind):
    # A form claiming the hidden edit's time is an approval of the response.
    blind.required_approvals = 2
    blind.save()
    c = make_candidate(blind)
    c.approve_edited(cast.reviewer2, "Rob's corrected answer.", [1, 2, 3])
    decide(cast.client_for(cast.reviewer), c, "approve", seen_edit=c.edited_at.isoformat())
    c.refresh_from_db()
    assert c.status == Candidate.Status.PENDING
    assert c.reviews.get(reviewer=cast.reviewer).approved_edit is None


def test_an_edit_says_whose_approvals_it_set_aside_and_a_not_counted_approval_warns(cast, agent):
    agent.required_approvals = 2
    agent.save()
    c = make_candidate(agent)
    c.decide(cast.reviewer, "approve")
    r = cast.client_for(cast.reviewer2).post(reverse("candidate_edit", args=[c.pk]), {"text": "Rob's text."},
                                              follow=True)
    said = " ".join(str(m) for m in r.context["messages"])
    assert ("it still awaits review, with 1 of 2 approvals. "
            "The approval of rita was of the text before your edit") in said
    # rita's page, opened before the edit, approves: a warning, not a success.
    r = decide(cast.client_for(cast.reviewer), c, "approve", seen_edit="", follow=True)
    levels = {m.level_tag for m in r.context["messages"]}
    assert levels == {"warning"}
