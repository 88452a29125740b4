"""One rule for a list filter that cannot apply (an unknown agent, a bad
number, an unknown choice), on the four list pages and the export they link
to: the list matches nothing, each problem is named above it (the filter's
label as the page shows it, the value as typed, why), with a link that clears
the filters, and the form keeps what was typed. django-filter's own rule
(FilterView's `strict`); scoring.filters.filter_problems builds the lines and
templates/scoring/_filter_problems.html shows them."""

import html
import re

import pytest
from django.test import RequestFactory
from django.urls import reverse

from scoring.filters import (
    ActivityFilter,
    AgentOnlyFilter,
    CandidateFilter,
    MemoryFilter,
    RunFilter,
    clear_filters_url,
    filter_problems,
    typed_values,
    unread,
)
from scoring.models import Candidate
from scoring.models.runs import Mode, RunStatus
from tests.candidate_factory import make_candidate
from tests.matrix_data import matrix_run


def problems_on(page):
    """The problem lines the page shows above its list, unescaped; [] when none."""
    found = re.search(r'<div class="notice bad" id="filter-errors" role="alert">(.*?)</div>', page, re.S)
    if not found:
        return []
    return [html.unescape(line) for line in re.findall(r"<li>(.*?)</li>", found.group(1))]


def clear_link(page):
    return html.unescape(re.search(r'<a href="([^"]*)" id="filter-clear">clear the filters</a>', page).group(1))


def selected_option(page, name):
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S).group(1)
    return html.unescape(re.search(r'<option value="([^"]*)" selected>', select).group(1))


# --- the lines ------------------------------------------------------------------

def test_each_line_names_the_label_the_value_and_why(db, agent):
    query = {
        "agent": "999", "status": "bogus", "memory": "a\x00b", "min_divergence": "abc",
        "max_divergence": "1e999", "run": "12345",
    }
    lines = filter_problems(CandidateFilter(query))
    assert lines == [
        "Agent “999”: there is no such agent.",
        "Status “bogus”: not one of the choices.",
        "Memory in its context “a\\x00b”: null characters are not allowed.",
        "Divergence from “abc”: not a number.",
        "Divergence to “1e999”: the most it may be is 1,000,000,000.",
        "Found by run “12345”: there is no such run.",
    ]


def test_good_filters_and_no_filters_have_no_problems(db, agent):
    assert filter_problems(CandidateFilter(None)) == []
    assert filter_problems(CandidateFilter({"agent": agent.name, "status": "pending", "min_divergence": "-1"})) == []
    # An agent named by its name is shown as its id, which the agent select knows.
    assert typed_values(CandidateFilter({"agent": agent.name}))["agent"] == str(agent.pk)


def test_a_long_value_is_cut_short_in_its_line(db):
    (line,) = filter_problems(AgentOnlyFilter({"agent": "x" * 500}))
    assert line == f"Agent “{'x' * 60}…”: there is no such agent."


def test_a_nul_reads_the_same_in_every_list_and_in_django_s_forms(db):
    # Django's own forms (an agent's key variable) say "Null characters are not
    # allowed.": the lists say the same, not "a NUL character is not allowed.".
    assert filter_problems(MemoryFilter({"q": "\x00"})) == ["Search “\\x00”: null characters are not allowed."]
    assert filter_problems(ActivityFilter({"actor": "a\x00"})) == ["Who “a\\x00”: null characters are not allowed."]


def test_a_reason_after_a_label_starts_in_lower_case(db):
    lines = filter_problems(ActivityFilter({"since": "2026-11-05", "until": "2026-11-01"}))
    assert lines == ["Until “2026-11-01”: the end date is before the start date."]


def test_the_activity_target_filter_reads_well_in_its_line(db):
    assert filter_problems(ActivityFilter({"target_type": "bogus"})) == ["Target “bogus”: not one of the choices."]


def test_a_reversed_divergence_range_is_named_as_the_activity_log_names_its_dates(db):
    # It matched nothing without a word (0 rows, no notice).
    lines = filter_problems(CandidateFilter({"min_divergence": "300", "max_divergence": "100"}))
    assert lines == ["Divergence to “100”: the end of the range is below its start."]
    assert filter_problems(CandidateFilter({"min_divergence": "100", "max_divergence": "100"})) == []
    # Each value was read: its number input keeps its type (only a value it cannot show is text).
    assert unread(CandidateFilter({"min_divergence": "300", "max_divergence": "100"})) == set()
    assert unread(CandidateFilter({"min_divergence": "abc", "max_divergence": "1e99"})) == {
        "min_divergence", "max_divergence"}
    assert unread(ActivityFilter({"since": "2026-11-05", "until": "2026-11-01"})) == set()


def test_the_form_shows_a_value_as_its_input_can_show_it(db):
    typed = typed_values(ActivityFilter({"since": "11/01/2026", "until": "notadate", "actor": "a\x00b"}))
    # Read: as a date input shows it (it shows "11/01/2026" empty, and Chromium warns).
    assert typed["since"] == "2026-11-01"
    # Not read: as typed, a NUL as its problem line shows it (a browser shows U+FFFD for it).
    assert typed["until"] == "notadate" and typed["actor"] == "a\\x00b"
    assert typed_values(CandidateFilter({"min_divergence": " 5 ", "max_divergence": "1e2"})) == {
        **typed_values(CandidateFilter(None)), "min_divergence": "5", "max_divergence": "1E+2"}


def test_clearing_keeps_what_is_no_filter_and_drops_the_page(db):
    request = RequestFactory().get("/agents/1/memories/", {"q": "a", "flag": "nope", "sort": "key", "page": "3"})
    assert clear_filters_url(request, MemoryFilter(request.GET)) == "/agents/1/memories/?sort=key"
    request = RequestFactory().get("/runs/", {"agent": "999", "page": "2"})
    assert clear_filters_url(request, RunFilter(request.GET)) == "/runs/"


# --- the runs list ----------------------------------------------------------------

@pytest.fixture
def runs(db, agent):
    full = matrix_run(agent, [[1.0]])
    failed = matrix_run(agent, [[1.0]], status=RunStatus.FAILED)
    return full, failed


def run_ids(response):
    return [r.pk for r in response.context["page"].object_list]


def test_the_runs_list_matches_nothing_and_names_a_bad_filter(cast, runs):
    client = cast.client_for(cast.viewer)
    page = client.get(reverse("run_list"), {"agent": "999", "status": "bogus", "mode": "full"})
    assert run_ids(page) == []
    assert problems_on(page.text) == [
        "Agent “999”: there is no such agent.", "Status “bogus”: not one of the choices.",
    ]
    assert "No runs shown: some filters cannot be applied." in page.text
    assert "No runs match these filters" not in page.text  # said once, above
    assert clear_link(page.text) == reverse("run_list")
    # The form keeps what was typed, known or not.
    assert selected_option(page.text, "agent") == "999"
    assert selected_option(page.text, "status") == "bogus"
    assert selected_option(page.text, "mode") == "full"


def test_the_runs_list_still_applies_good_filters(cast, runs, agent):
    full, failed = runs
    client = cast.client_for(cast.viewer)
    page = client.get(reverse("run_list"), {"agent": agent.pk, "status": RunStatus.FAILED})
    assert run_ids(page) == [failed.pk] and problems_on(page.text) == []
    assert 'id="filter-errors"' not in page.text
    # By name too, as the candidate list and the queue take it.
    page = client.get(reverse("run_list"), {"agent": agent.name, "mode": Mode.FULL})
    assert set(run_ids(page)) == {full.pk, failed.pk}
    assert selected_option(page.text, "agent") == str(agent.pk)


# --- the memories list --------------------------------------------------------------

@pytest.fixture
def memories_run(db, agent):
    return matrix_run(agent, [[2.0] + [0.0] * 11, [1.0, -2.5] + [0.0] * 10], keys=["useful", "harmful"])


def test_the_memories_list_matches_nothing_and_names_a_bad_flag(cast, memories_run, agent):
    url = reverse("memory_list", args=[agent.pk])
    page = cast.client_for(cast.viewer).get(url, {"flag": "nope", "q": "use", "sort": "key"})
    assert list(page.context["page"].object_list) == []
    assert problems_on(page.text) == ["Show “nope”: not one of the choices."]
    assert "No memories shown: a filter cannot be applied." in page.text
    assert clear_link(page.text) == f"{url}?sort=key"
    assert selected_option(page.text, "flag") == "nope" and 'name="q" value="use"' in page.text


def test_the_memories_list_still_applies_a_good_flag(cast, memories_run, agent):
    page = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk]), {"flag": "harmful"})
    assert [m.key for m in page.context["page"].object_list] == ["harmful"]
    assert problems_on(page.text) == []


# --- the candidate list and its export ------------------------------------------------

def test_the_candidate_list_matches_nothing_and_names_a_bad_filter(cast, agent):
    make_candidate(agent, divergence=3.0)
    page = cast.client_for(cast.viewer).get(reverse("candidate_list"), {"agent": "999", "max_divergence": "abc"})
    assert list(page.context["page"].object_list) == []
    assert problems_on(page.text) == [
        "Agent “999”: there is no such agent.", "Divergence to “abc”: not a number.",
    ]
    assert clear_link(page.text) == reverse("candidate_list")
    assert selected_option(page.text, "agent") == "999"
    # A number input would show "abc" as empty: the field is text while named.
    assert '<input type="text" name="max_divergence" value="abc"' in page.text


def test_the_candidate_list_names_an_unknown_run_and_lets_it_be_corrected(cast, agent):
    make_candidate(agent)
    page = cast.client_for(cast.viewer).get(reverse("candidate_list"), {"run": "999"})
    assert list(page.context["page"].object_list) == []
    assert problems_on(page.text) == ["Found by run “999”: there is no such run."]
    assert '<input type="text" name="run" value="999"' in page.text and "found by run #" not in page.text


def test_the_snapshot_pages_candidates_link_lists_that_snapshots_candidates(cast, agent):
    # make_candidate puts each candidate in a snapshot of its own.
    mine, other = make_candidate(agent), make_candidate(agent)
    client = cast.client_for(cast.viewer)
    snapshot_page = client.get(reverse("snapshot_detail", args=[mine.snapshot_id])).text
    link = f'{reverse("candidate_list")}?snapshot={mine.snapshot_id}'
    assert f'href="{link}"' in snapshot_page
    page = client.get(link)
    assert [c.pk for c in page.context["page"].object_list] == [mine.pk]
    assert f'snapshot #{mine.snapshot_id}</a>' in page.text and other.pk != mine.pk

    page = client.get(reverse("candidate_list"), {"snapshot": "999"})
    assert list(page.context["page"].object_list) == []
    assert problems_on(page.text) == ["In snapshot “999”: there is no such snapshot."]
    assert '<input type="text" name="snapshot" value="999"' in page.text


def test_the_candidate_list_still_applies_good_filters(cast, agent):
    high, low = make_candidate(agent, divergence=3.0), make_candidate(agent, divergence=1.0)
    page = cast.client_for(cast.viewer).get(reverse("candidate_list"), {"agent": agent.pk, "min_divergence": "2"})
    assert [c.pk for c in page.context["page"].object_list] == [high.pk]
    assert problems_on(page.text) == []
    assert low.pk not in [c.pk for c in page.context["page"].object_list]


def test_the_export_refuses_an_agent_it_cannot_apply(cast, agent):
    c = make_candidate(agent)
    c.decide(cast.reviewer, "approve")
    client = cast.client_for(cast.viewer)
    r = client.get(reverse("candidate_export"), {"agent": "nobody-here"})
    assert r.status_code == 400 and r["Content-Type"] == "text/plain; charset=utf-8"
    assert r.text == "Nothing exported: a filter cannot be applied.\nAgent “nobody-here”: there is no such agent.\n"
    r = client.get(reverse("candidate_export"), {"agent": agent.pk})
    assert r.status_code == 200 and len(b"".join(r.streaming_content).splitlines()) == 1


def test_the_list_links_its_export_with_the_agent_typed(cast, agent):
    # So a bad agent's export is the 400 above, never every agent's samples.
    page = cast.client_for(cast.viewer).get(reverse("candidate_list"), {"agent": "999"}).text
    assert f'href="{reverse("candidate_export")}?agent=999"' in page


# --- the review queue -------------------------------------------------------------------

def test_the_queue_offers_nothing_and_names_a_bad_agent(cast, agent):
    c = make_candidate(agent)
    page = cast.client_for(cast.reviewer).get(reverse("review_queue"), {"agent": "999", "after": c.pk})
    assert page.context.get("candidate") is None
    c.refresh_from_db()
    assert c.reserved_by is None
    assert problems_on(page.text) == ["Agent “999”: there is no such agent."]
    assert "No candidates shown: a filter cannot be applied." in page.text
    assert "Nothing left for you to review" not in page.text
    assert clear_link(page.text) == reverse("review_queue")
    assert selected_option(page.text, "agent") == "999"


def test_the_queue_still_applies_a_good_agent(cast, agent):
    c = make_candidate(agent)
    page = cast.client_for(cast.reviewer).get(reverse("review_queue"), {"agent": agent.name})
    assert page.context["candidate"].pk == c.pk and problems_on(page.text) == []
    assert selected_option(page.text, "agent") == str(agent.pk)
    assert Candidate.objects.get(pk=c.pk).reserved_by == cast.reviewer


def test_no_list_page_names_a_problem_without_a_filter(cast, agent):
    client = cast.client_for(cast.viewer)
    for url in (reverse("run_list"), reverse("candidate_list"), reverse("review_queue"),
                reverse("memory_list", args=[agent.pk])):
        assert 'id="filter-errors"' not in client.get(url).text, url
