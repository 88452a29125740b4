"""Review pages: the queue, the list, a candidate, deciding, comments, edits, the export."""

import json

import pytest
from candidate_factory import make_approved, make_candidate
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scoring.editing import edit_and_approve
from scoring.models import Activity, Agent, Candidate, Comment, Review
from scoring.outbox import send_to_training

XSS = "<script>alert('x')</script>"


def queue_url(**params):
    url = reverse("review_queue")
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def detail_url(c):
    return reverse("candidate_detail", args=[c.pk])


def decide(client, c, decision, comment="", **extra):
    return client.post(reverse("candidate_decide", args=[c.pk]),
                       {"decision": decision, "comment": comment}, **extra)


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


@pytest.mark.parametrize("name", ["review_queue", "candidate_list", "candidate_export"])
def test_it_forbids_outsiders_the_pages(cast, agent, name):
    make_candidate(agent)
    assert cast.client_for(cast.outsider).get(reverse(name)).status_code == 403


def test_it_forbids_outsiders_a_candidate(cast, agent):
    c = make_candidate(agent)
    client = cast.client_for(cast.outsider)
    assert client.get(detail_url(c)).status_code == 403
    assert client.get(detail_url(c), HTTP_HX_REQUEST="true").status_code == 403


def test_it_sends_anonymous_users_to_log_in(agent):
    r = Client().get(queue_url())
    assert r.status_code == 302 and reverse("login") in r["Location"]


# --- the list ---------------------------------------------------------------------

def test_it_lists_candidates_by_status_and_agent(cast, agent):
    pending = make_candidate(agent, divergence=2.0)
    approved = make_candidate(agent, divergence=3.0, status=Candidate.Status.APPROVED)
    client = cast.client_for(cast.viewer)

    r = client.get(reverse("candidate_list"))
    assert [c.pk for c in r.context["page"].object_list] == [approved.pk, pending.pk]

    r = client.get(reverse("candidate_list"), {"status": "approved", "agent": agent.pk})
    assert [c.pk for c in r.context["page"].object_list] == [approved.pk]
    r = client.get(reverse("candidate_list"), {"status": "nonsense"})
    assert len(r.context["page"].object_list) == 2


# --- one candidate ------------------------------------------------------------------

def test_it_shows_the_context_and_the_difference_from_the_alternate(cast, agent):
    c = make_candidate(
        agent,
        user_text="How is the garden doing?",
        memory_text="Alice grows tomatoes.",
        response_text="Alice says the tomatoes need more sun.",
        alternate_text="I think the garden needs more water.",
    )
    r = cast.client_for(cast.viewer).get(detail_url(c))
    page = r.content.decode()
    assert "How is the garden doing?" in page
    assert "people/alice" in page and "memory</span>" in page
    assert "<del>Alice says </del>the <del>tomatoes need </del>more <del>sun.</del>" in page
    assert "<ins>I think </ins>the <ins>garden needs </ins>more <ins>water.</ins>" in page
    assert "0 of 1" in page  # approvals vs required


def test_it_shows_decisions_and_comments_with_who_and_when(cast, agent):
    agent.required_approvals = 2
    agent.save()
    c = make_candidate(agent)
    c.decide(cast.reviewer, "approve")
    c.add_comment(cast.reviewer2, "checked the facts")

    r = cast.client_for(cast.viewer).get(detail_url(c))
    page = r.content.decode()
    assert "1 of 2" in page and "rita" in page
    assert "checked the facts" in page and "rob" in page


def test_it_serves_the_decisions_panel_as_a_fragment(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer2, "approve")
    r = cast.client_for(cast.reviewer).get(detail_url(c), HTTP_HX_REQUEST="true")
    page = r.content.decode()
    assert r.status_code == 200
    assert 'id="decisions"' in page and "rob" in page
    assert "<html" not in page and "topbar" not in page


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

def test_it_escapes_model_text_everywhere(cast, agent):
    c = make_candidate(agent, user_text=XSS, memory_text=XSS, response_text=f"Hi {XSS}",
                       alternate_text=f"Bye {XSS}")
    c.decide(cast.reviewer2, "reject", comment=XSS)
    c.add_comment(cast.reviewer2, XSS)
    Candidate.objects.filter(pk=c.pk).update(status=Candidate.Status.PENDING)
    Review.objects.all().delete()
    edit_and_approve(c, cast.reviewer2, f"Edited {XSS}")
    c.add_comment(cast.reviewer2, XSS)
    client = cast.client_for(cast.reviewer)

    pages = [
        client.get(detail_url(c)),
        client.get(detail_url(c), HTTP_HX_REQUEST="true"),
        client.get(reverse("candidate_list")),
        client.post(reverse("candidate_comment", args=[c.pk]), {"text": XSS}, HTTP_HX_REQUEST="true"),
        client.post(reverse("candidate_decide", args=[c.pk]), {"decision": "reject", "comment": ""},
                    HTTP_HX_REQUEST="true"),
    ]
    pending = make_candidate(agent, divergence=99.0, response_text=XSS, alternate_text=XSS)
    pages.append(client.get(queue_url()))
    assert pages[-1].context["candidate"].pk == pending.pk
    for r in pages:
        html = r.content.decode()
        assert "<script>alert" not in html, r.request["PATH_INFO"]
    assert "&lt;script&gt;" in pages[0].content.decode()


# --- the export --------------------------------------------------------------------------------

def test_it_exports_approved_and_trained_samples_with_provenance(cast, agent):
    edited = make_candidate(agent, divergence=3.0)
    edit_and_approve(edited, cast.reviewer, "A better answer.")
    plain = make_candidate(agent, divergence=2.0)
    plain.decide(cast.reviewer2, "approve")
    make_candidate(agent, divergence=5.0)  # pending: not exported
    job = send_to_training(agent, cast.operator, candidate_ids=[plain.pk])
    job.mark_accepted("job-123")

    r = cast.client_for(cast.viewer).get(reverse("candidate_export"), {"agent": agent.name})
    assert r.status_code == 200 and r["Content-Type"].startswith("application/jsonl")
    lines = [json.loads(line) for line in b"".join(r.streaming_content).decode().splitlines()]
    by_id = {line["provenance"]["candidate_id"]: line for line in lines}
    assert set(by_id) == {edited.pk, plain.pk}

    edited.refresh_from_db()
    e = by_id[edited.pk]
    assert e["continuation_ids"] == edited.edited_ids and e["context_ids"] == edited.context_ids
    assert e["text"] == "A better answer." and e["original_text"] == edited.response_text
    assert e["edited"] is True and e["provenance"]["edited_by"] == "rita"
    assert e["provenance"]["train_job"] is None
    assert e["provenance"]["reviewers"][0]["reviewer"] == "rita"
    assert e["provenance"]["reviewers"][0]["decision"] == "approve"

    p = by_id[plain.pk]
    assert p["provenance"]["train_job"] == str(job.pk)
    assert p["provenance"]["train_job_status"] == "queued"
    assert p["provenance"]["server_job_id"] == "job-123"
    assert p["provenance"]["snapshot_id"] == plain.snapshot_id
    assert p["provenance"]["taken_at"] and p["provenance"]["divergence"] == 2.0
    assert p["provenance"]["status"] == "trained"

    r = cast.client_for(cast.viewer).get(reverse("candidate_export"), {"agent": "nobody-here"})
    assert b"".join(r.streaming_content) == b""


# --- query counts -------------------------------------------------------------------------------

def _queries(client, url):
    # A first visit to the queue also records the new reservation: count a repeat visit.
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_it_reads_the_pages_in_a_constant_number_of_queries(cast, agent):
    def grow(n):
        for _ in range(n):
            c = make_candidate(agent)
            c.decide(cast.reviewer2, "skip")
            c.add_comment(cast.operator, "a note")
        make_approved(agent, 2)

    grow(2)
    reviewer = cast.client_for(cast.reviewer)
    viewer = cast.client_for(cast.viewer)
    top = Candidate.objects.pending().first()
    urls = [queue_url(), reverse("candidate_list"), detail_url(top)]
    before = [_queries(reviewer, url) for url in urls] + [_queries(viewer, reverse("candidate_list"))]

    grow(20)
    after = [_queries(reviewer, url) for url in urls] + [_queries(viewer, reverse("candidate_list"))]
    assert before == after
