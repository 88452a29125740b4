"""The activity log: filters, pagination, links to targets, escaping, access."""

from datetime import UTC, datetime

import pytest
from candidate_factory import make_candidate
from django.urls import reverse

from scoring.models import Activity, Agent, ScoringRun, Snapshot

XSS = "<script>alert(1)</script>"


@pytest.fixture
def log(cast):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    snapshot = Snapshot.objects.create(agent=agent, taken_at=datetime(2026, 11, 1, tzinfo=UTC),
                                       source=Snapshot.Source.API)
    run = ScoringRun.objects.create(agent=agent, snapshot=snapshot, mode="full")
    entries = {
        "created": Activity.record(cast.operator, "created agent", agent),
        "imported": Activity.record(None, "imported snapshot", snapshot, actor_name="agent:poc", nodes=12),
        "started": Activity.record(cast.operator, "started run", run, mode="full"),
        "evil": Activity.record(cast.reviewer, "commented", None, text=XSS),
    }
    days = {"created": 1, "imported": 2, "started": 3, "evil": 4}
    for name, entry in entries.items():
        Activity.objects.filter(pk=entry.pk).update(created_at=datetime(2026, 11, days[name], 12, tzinfo=UTC))
    return {"agent": agent, "snapshot": snapshot, "run": run, **entries}


def test_it_lists_who_did_what_newest_first(cast, log):
    page = cast.client_for(cast.viewer).get(reverse("activity_list"))
    assert page.status_code == 200
    html = page.text
    newest_first = ["commented", "started run", "imported snapshot", "created agent"]
    order = [html.index(f">{verb}</span>") for verb in newest_first]
    assert order == sorted(order)
    assert "agent:poc" in html and cast.operator.username in html
    # Targets link to their pages.
    assert f'href="{reverse("run_detail", args=[log["run"].pk])}"' in html
    assert f'href="{reverse("agent_detail", args=[log["agent"].pk])}"' in html
    assert f'href="{reverse("snapshot_detail", args=[log["snapshot"].pk])}"' in html
    # Details are text, escaped.
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_it_filters_by_actor_verb_target_type_and_dates(cast, log):
    client = cast.client_for(cast.viewer)

    def verbs(**params):
        html = client.get(reverse("activity_list"), params).text
        return {v for v in ["created agent", "imported snapshot", "started run", "commented"] if f">{v}</span>" in html}

    assert verbs(actor=cast.operator.username) == {"created agent", "started run"}
    assert verbs(actor="agent:") == {"imported snapshot"}
    assert verbs(verb="started run") == {"started run"}
    assert verbs(target_type="snapshot") == {"imported snapshot"}
    assert verbs(since="2026-11-02", until="2026-11-03") == {"imported snapshot", "started run"}
    assert verbs(until="2026-11-01") == {"created agent"}


def test_it_names_a_bad_filter_and_lists_nothing(cast, log):
    # The list pages' one rule (scoring.filters): nothing listed, each problem named above the list.
    client = cast.client_for(cast.viewer)
    page = client.get(reverse("activity_list"), {"since": "2026-11-05", "until": "2026-11-01"})
    assert "<li>Until “2026-11-01”: the end date is before the start date.</li>" in page.text
    # Both dates were read: their inputs stay date pickers, to correct the range.
    assert '<input type="date" name="until" value="2026-11-01">' in page.text
    assert list(page.context["page"].object_list) == []
    page = client.get(reverse("activity_list"), {"verb": "nonsense", "actor": "otto"})
    assert "<li>Did “nonsense”: not one of the choices.</li>" in page.text
    assert list(page.context["page"].object_list) == []
    assert "Nothing matches these filters" not in page.text  # the notice says why
    assert '<option value="nonsense" selected>nonsense</option>' in page.text  # kept, to correct
    assert 'href="/activity/?actor=otto" id="filter-clear"' not in page.text  # the clear link drops every filter
    assert 'href="/activity/" id="filter-clear"' in page.text


def test_the_form_keeps_what_was_typed_as_its_inputs_can_show_it(cast, log):
    client = cast.client_for(cast.viewer)
    # A date input shows a value that is not a date as empty (Chromium warns in
    # its console): text while it is named as a problem.
    for typed in ("notadate", "99999-01-01"):
        page = client.get(reverse("activity_list"), {"since": typed})
        assert f"<li>From “{typed}”: not a date.</li>" in page.text
        assert f'<input type="text" name="since" value="{typed}">' in page.text
    # A NUL, as its problem line shows it (a browser shows U+FFFD for a NUL in a field).
    page = client.get(reverse("activity_list"), {"since": "\x00", "actor": "a\x00b"})
    assert "<li>Who “a\\x00b”: null characters are not allowed.</li>" in page.text
    assert '<input type="text" name="actor" value="a\\x00b">' in page.text
    assert '<input type="text" name="since" value="\\x00">' in page.text and "\x00" not in page.text
    # A date read in another format is shown as a date input reads it.
    page = client.get(reverse("activity_list"), {"until": "11/03/2026"})
    assert '<input type="date" name="until" value="2026-11-03">' in page.text
    # The target select names its filter in words that read in a problem's line too.
    page = client.get(reverse("activity_list"), {"target_type": "bogus"})
    assert "<li>Target “bogus”: not one of the choices.</li>" in page.text
    assert '<option value="bogus" selected>bogus</option>' in page.text
    assert "To a" not in page.text


def test_it_paginates(cast, log):
    for i in range(60):
        Activity.record(cast.operator, "poked", None, n=i)
    client = cast.client_for(cast.viewer)
    first = client.get(reverse("activity_list"), {"verb": "poked"}).text
    assert "page 1 of 2" in first
    assert "?verb=poked&amp;page=2" in first
    second = client.get(reverse("activity_list"), {"verb": "poked", "page": 2}).text
    assert "page 2 of 2" in second
    assert second.count(">poked</span>") == 10


def test_it_says_when_nothing_happened_yet(cast):
    html = cast.client_for(cast.viewer).get(reverse("activity_list")).text
    assert "Nothing has happened yet" in html


def test_an_outsider_gets_403(cast, log):
    assert cast.client_for(cast.outsider).get(reverse("activity_list")).status_code == 403


# --- issue 12, defect 8: details and targets in words ---------------------------

def test_details_are_words_not_python_reprs(cast, log):
    Activity.record(cast.operator, "started run", log["run"], mode="finetune",
                    params={"count": 134, "min_divergence": 1.0, "alternates": True})
    Activity.record(cast.reviewer, "rejected", log["run"], comment="no", divergence=316.62644187023113)
    Activity.record(cast.reviewer, "reserved", log["run"], until="2026-11-20T22:00:00.123456+00:00")

    html = cast.client_for(cast.viewer).get(reverse("activity_list")).text

    assert "last entries 134, minimum divergence (nats) 1.00, generate alternates" in html
    assert "fine-tune candidates" in html
    assert "{" not in html.split("<tbody>")[1]  # no dict repr
    assert "316.63" in html and "316.626" not in html
    assert "2026-11-20 22:00:00" in html and ".123456" not in html
    assert "True" not in html.split("<tbody>")[1]


def test_an_identifier_has_no_thousands_separators(cast, log):
    Activity.record(cast.operator, "started run", log["run"], mode="estimate",
                    params={"ablations": 1200, "seed": 323988391})
    body = cast.client_for(cast.viewer).get(reverse("activity_list")).text.split("<tbody>")[1]
    assert "seed 323988391" in body
    assert "1,200" in body  # a count keeps them
    assert "ablations (K) 1,200" in body  # a label's capitals inside it kept


def test_an_empty_detail_is_left_out(cast, log):
    Activity.record(cast.reviewer, "approved", log["run"], comment="", divergence=3.5)
    body = cast.client_for(cast.viewer).get(reverse("activity_list")).text.split("<tbody>")[1]
    assert "divergence" in body
    assert "comment:" not in body


def test_targets_are_named_once_and_in_words(cast, log):
    html = cast.client_for(cast.viewer).get(reverse("activity_list")).text
    body = html.split("<tbody>")[1]
    assert "scoringrun" not in body
    assert f">run {log['run'].pk} (full matrix)</a>" in body
    assert '<span class="muted small">run</span>' not in body  # the name already says it
    assert '<span class="muted small">snapshot</span>' in body  # "poc @ ..." does not
    # The filter offers types in words too.
    assert '<option value="scoringrun">run</option>' in html


def test_blind_review_keeps_others_decisions_out_of_the_log_until_mine(cast, agent):
    agent.blind_review, agent.required_approvals = True, 3
    agent.save()
    candidate = make_candidate(agent)
    candidate.decide(cast.reviewer2, "approve")
    candidate.add_comment(cast.reviewer2, "looks right")

    def shown(user):
        body = cast.client_for(user).get(reverse("activity_list")).text.split("</form>")[-1]
        return "approved" in body, "looks right" in body

    assert shown(cast.reviewer) == (False, False)
    assert shown(cast.viewer) == (True, True)  # not a reviewer: nothing to bias
    candidate.decide(cast.reviewer, "approve")
    assert shown(cast.reviewer) == (True, True)


def test_the_filters_offer_a_reviewer_only_what_blind_review_lets_them_see(cast, agent):
    """Before, "Did" offered every verb in the log: a reviewer blind to all the
    approvals so far could choose "approved" and be told "Nothing matches"."""
    agent.blind_review, agent.required_approvals = True, 3
    agent.save()
    candidate = make_candidate(agent)
    candidate.decide(cast.reviewer2, "approve")
    candidate.add_comment(cast.reviewer2, "looks right")
    Activity.record(cast.operator, "created agent", agent)

    def offered(user, name, **params):
        page = cast.client_for(user).get(reverse("activity_list"), params)
        return {value for value, _ in page.context[name]}, page.text

    verbs, _ = offered(cast.reviewer, "verbs")
    assert verbs == {"created agent"}
    types, _ = offered(cast.reviewer, "target_types")
    assert types == {"agent"}
    assert offered(cast.viewer, "verbs")[0] == {"approved", "commented on", "created agent"}
    assert offered(cast.reviewer2, "verbs")[0] == {"approved", "commented on", "created agent"}  # his own
    # Asked for by hand (an old link), it is named as no choice, as any verb it cannot offer.
    verbs, html = offered(cast.reviewer, "verbs", verb="approved")
    assert "<li>Did “approved”: not one of the choices.</li>" in html and "Nothing matches" not in html

    candidate.decide(cast.reviewer, "approve")  # rita decided: nothing is hidden from her now
    assert offered(cast.reviewer, "verbs")[0] == {"approved", "commented on", "created agent"}
    assert offered(cast.reviewer, "target_types")[0] == {"agent", "candidate"}


def test_a_verb_some_of_whose_entries_are_hidden_is_still_offered(cast, agent):
    agent.blind_review, agent.required_approvals = True, 3
    agent.save()
    make_candidate(agent).decide(cast.reviewer2, "approve")  # hidden from rita
    mine = make_candidate(agent)
    mine.decide(cast.reviewer, "approve")
    page = cast.client_for(cast.reviewer).get(reverse("activity_list"), {"verb": "approved"})
    assert "approved" in {value for value, _ in page.context["verbs"]}
    assert [e.target_id for e in page.context["page"].object_list] == [str(mine.pk)]


def test_an_entry_whose_target_was_deleted_says_so_and_links_no_404(cast, log):
    run = log["run"]
    url = reverse("run_detail", args=[run.pk])
    assert url in cast.client_for(cast.viewer).get(reverse("activity_list")).text
    run.delete()

    page = cast.client_for(cast.viewer).get(reverse("activity_list")).text

    assert url not in page and "(deleted since)" in page
    # The others still link.
    assert reverse("agent_detail", args=[log["agent"].pk]) in page
