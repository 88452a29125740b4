"""Candidate pages: the list, one candidate with its context and decisions, the
export, access to them, escaping of model text, and their query counts."""

import json

import pytest
from candidate_factory import XSS, detail_url, make_approved, make_candidate, queue_url
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scoring.editing import edit_and_approve
from scoring.models import Agent, Candidate, Review
from scoring.outbox import send_to_training


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


def test_it_lists_candidates_by_status_and_agent(cast, agent):
    pending = make_candidate(agent, divergence=2.0)
    approved = make_candidate(agent, divergence=3.0, status=Candidate.Status.APPROVED)
    client = cast.client_for(cast.viewer)

    r = client.get(reverse("candidate_list"))
    assert [c.pk for c in r.context["page"].object_list] == [approved.pk, pending.pk]

    r = client.get(reverse("candidate_list"), {"status": "approved", "agent": agent.pk})
    assert [c.pk for c in r.context["page"].object_list] == [approved.pk]
    # A status that is not one is named, and matches nothing (defect 7).
    r = client.get(reverse("candidate_list"), {"status": "nonsense"})
    assert len(r.context["page"].object_list) == 0
    assert "Status “nonsense”: not one of the choices." in r.text


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


def test_it_tells_reviewers_when_the_sample_leaves_the_memories_out(cast, agent):
    c = make_candidate(agent)
    page = cast.client_for(cast.reviewer).get(detail_url(c)).text
    assert 'id="trained-without-memories"' not in page and 'id="context-setting-changed"' not in page

    c.training_context = Candidate.TrainingContext.WITHOUT_MEMORIES
    c.save(update_fields=["training_context"])
    agent.training_context = Agent.TrainingContext.WITHOUT_MEMORIES
    agent.save(update_fields=["training_context"])

    page = cast.client_for(cast.reviewer).get(detail_url(c)).text
    assert "This sample's context leaves the memories below out (poc trained without memories" in page
    assert 'id="context-setting-changed"' not in page


def test_a_candidate_made_before_the_setting_changed_says_what_its_context_holds(cast, agent):
    c = make_candidate(agent)  # made as scored: its context holds the memories
    agent.training_context = Agent.TrainingContext.WITHOUT_MEMORIES
    agent.save(update_fields=["training_context"])

    page = cast.client_for(cast.reviewer).get(detail_url(c)).text
    assert 'id="trained-without-memories"' not in page  # its context still holds them
    assert "samples' context is now “without memories”; this candidate keeps the context it was made " \
           "with (“as scored: memories included”)" in page


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


def test_it_exports_approved_and_trained_samples_with_provenance(cast, agent):
    edited = make_candidate(agent, divergence=3.0)
    edit_and_approve(edited, cast.reviewer, "A better answer.")
    plain = make_candidate(agent, divergence=2.0)
    Candidate.objects.filter(pk=plain.pk).update(training_context=Candidate.TrainingContext.WITHOUT_MEMORIES)
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
    assert e["context"] == "as_scored"  # its context holds the memories
    assert e["provenance"]["train_job"] is None
    assert e["provenance"]["reviewers"][0]["reviewer"] == "rita"
    assert e["provenance"]["reviewers"][0]["decision"] == "approve"
    assert e["provenance"]["reviewers"][0]["of_this_text"] is True  # her approval is of her edit

    p = by_id[plain.pk]
    assert p["context"] == "without_memories"
    assert p["provenance"]["train_job"] == str(job.pk)
    assert p["provenance"]["train_job_status"] == "queued"
    assert p["provenance"]["server_job_id"] == "job-123"
    assert p["provenance"]["snapshot_id"] == plain.snapshot_id
    assert p["provenance"]["taken_at"] and p["provenance"]["divergence"] == 2.0
    assert p["provenance"]["status"] == "trained"

    # An agent that is none: a 400 that says so, never every agent's samples.
    r = cast.client_for(cast.viewer).get(reverse("candidate_export"), {"agent": "nobody-here"})
    assert r.status_code == 400 and "Agent “nobody-here”: there is no such agent." in r.text


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


# --- issue 12: filtering by memory and by divergence ------------------------------

def listed(client, **params):
    return {c.pk for c in client.get(reverse("candidate_list"), params).context["page"].object_list}


def test_it_filters_by_a_memory_in_the_responses_context(cast, agent):
    garden = make_candidate(agent, memory_text="Alice grows tomatoes.")  # people/alice before it
    assert listed(cast.client_for(cast.viewer), memory="people/alice") == {garden.pk}
    assert listed(cast.client_for(cast.viewer), memory="ALICE") == {garden.pk}  # part of the key, any case
    assert listed(cast.client_for(cast.viewer), memory="people/bob") == set()
    # A memory after the response is not in its context.
    late = make_candidate(agent)
    response = late.response
    response.snapshot.nodes.filter(memory_key="people/alice").update(index=99)
    assert late.pk not in listed(cast.client_for(cast.viewer), memory="alice")


def test_it_filters_by_divergence_and_names_values_that_do_not_fit(cast, agent):
    low, mid, high = (make_candidate(agent, divergence=d) for d in (0.5, 2.0, 7.5))
    client = cast.client_for(cast.viewer)
    assert listed(client, min_divergence="1") == {mid.pk, high.pk}
    assert listed(client, max_divergence="2") == {low.pk, mid.pk}
    assert listed(client, min_divergence="1", max_divergence="3") == {mid.pk}
    # A value that cannot apply matches nothing and is named (defect 7).
    assert listed(client, min_divergence="nan", memory="\x00") == set()
    assert listed(client, min_divergence="1e400") == set()
    assert "Divergence from “1e400”: " in client.get(reverse("candidate_list"), {"min_divergence": "1e400"}).text
    # One bound, said once (a second one of 1e+50 came with it).
    page = client.get(reverse("candidate_list"), {"max_divergence": "1e999"}).text
    assert "Divergence to “1e999”: the most it may be is 1,000,000,000." in page and "1e+50" not in page
    assert listed(client, memory="\x00") == set()  # "Null characters are not allowed."
    page = client.get(reverse("candidate_list"), {"min_divergence": "1"}).text
    assert 'name="min_divergence" value="1"' in page


def test_it_filters_by_the_run_that_found_them(cast, agent):
    c, other = make_candidate(agent), make_candidate(agent)
    run = c.snapshot.runs.create(agent=agent, mode="finetune")
    Candidate.objects.filter(pk=c.pk).update(run=run)
    assert listed(cast.client_for(cast.viewer), run=str(run.pk)) == {c.pk}
    assert other.pk in listed(cast.client_for(cast.viewer))
    client = cast.client_for(cast.viewer)
    assert f"found by run #{run.pk}" in client.get(reverse("candidate_list"), {"run": run.pk}).text
    # Not a run's id: named as a problem, never "found by run #abc".
    assert "found by run" not in client.get(reverse("candidate_list"), {"run": "abc"}).text


def test_the_list_offers_bulk_review_to_reviewers_only(cast, agent):
    make_candidate(agent)
    assert 'id="bulk-bar"' in cast.client_for(cast.reviewer).get(reverse("candidate_list")).text
    page = cast.client_for(cast.viewer).get(reverse("candidate_list")).text
    assert 'id="bulk-bar"' not in page and 'name="ids"' not in page


def test_a_reversed_divergence_range_is_named_not_silent(cast, agent):
    make_candidate(agent, divergence=2.0)
    page = cast.client_for(cast.viewer).get(reverse("candidate_list"), {"min_divergence": "3", "max_divergence": "1"})
    assert list(page.context["page"].object_list) == []
    assert "<li>Divergence to “1”: the end of the range is below its start.</li>" in page.text
    # Both were read as numbers: the inputs stay number inputs.
    assert '<input type="number" name="max_divergence" value="1"' in page.text


def test_the_list_says_its_total_as_the_snapshot_page_counts_it(cast, agent):
    waiting = [make_candidate(agent, divergence=d) for d in (3.0, 2.0, 1.0)]
    make_candidate(agent, status=Candidate.Status.APPROVED)
    waiting[0].decide(cast.reviewer, "skip")  # no longer awaiting this reviewer's review
    page = cast.client_for(cast.reviewer).get(reverse("candidate_list")).text
    assert "<strong>4 candidates</strong>" in page
    assert "· 3 awaiting review · 2 awaiting your review</p>" in page
    # A reader has no review of their own to await.
    page = cast.client_for(cast.viewer).get(reverse("candidate_list"), {"status": "pending"}).text
    assert "<strong>3 candidates</strong> match these filters" in page
    assert "· 3 awaiting review</p>" in page and "your review" not in page


def test_the_list_stacks_on_a_phone_with_its_select_all_beside_the_bulk_buttons(cast, agent):
    make_candidate(agent)
    page = cast.client_for(cast.reviewer).get(reverse("candidate_list")).text
    # table.stack in a .stack-box (app.css): a row's cells wrap, the response on a line of its own.
    assert '<div class="table-wrap stack-box">\n<table class="stack" id="candidate-table">' in page
    assert '<td class="small line">' in page
    # The head a stacked table hides holds no control: select-all is in the bulk bar, labelled.
    bar = page[page.index('id="bulk-bar"'):page.index("</div>", page.index('id="bulk-bar"'))]
    assert '<input type="checkbox" data-select-all> Select all 1 on this page</label>' in bar
    assert page.count("data-select-all") == 1


def test_the_list_links_its_pages_with_the_agent_typed_whole(cast, agent):
    page = cast.client_for(cast.viewer).get(reverse("candidate_list"), {"agent": "a&status=approved"}).text
    assert f'href="{reverse("review_queue")}?agent=a%26status%3Dapproved"' in page
    assert f'href="{reverse("candidate_export")}?agent=a%26status%3Dapproved"' in page
