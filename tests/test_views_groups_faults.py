"""A groups run whose calls failed, on its page and the command line: a
failed leave-one-out is never called exact, and a set that could not be
judged for redundancy is named, not folded into "None"."""

from io import StringIO

import pytest
from django.urls import reverse

from scoring import modes
from scoring.models import ScoreCall
from tests.engine_support import (
    COPY,
    groups_run,
    private_refserver,  # noqa: F401  (this module's own server)
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(agent):
    run = groups_run(agent)
    assert [sorted(f["keys"]) for f in run.result["redundant"]] == [sorted([COPY, "places/office"])]
    return run


def failed(run, **which):
    """As if these calls had failed on every attempt; the run's result summed up again."""
    ScoreCall.objects.filter(run=run, **which).update(status=ScoreCall.Status.FAILED, result=None,
                                                       error="HTTP 500 from the server")
    run.result = {**run.result, **modes.get("groups").summary(run)}
    run.save(update_fields=["result"])
    return run


def page(cast, run):
    return cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk])).text


def test_a_failed_own_call_is_not_called_exact_and_its_pair_is_not_judged(cast, run):
    run = failed(run, filter="skip_key", memory__key="places/office")

    html = page(cast, run)

    places = next(g for g in run.result["groups"] if g["group"] == "places")
    assert places["importance"] is None
    assert "its own leave-one-out, whose call failed: unknown, not zero" in html
    assert run.result["redundant"] == []
    assert run.result["unjudged"] == [{"kind": "pair", "group": None, "keys": ["places/office", COPY],
                                       "failed": ["places/office"], "why": None}]
    assert "None among the sets that could be judged" in html and 'id="groups-unjudged"' in html
    assert "the own call of <span class=\"memkey\">places/office</span> failed" in html
    assert "notes/&lt;b&gt;office&lt;/b&gt;" in html and "<b>office</b>" not in html
    out = StringIO()
    modes.get("groups").report(run, out.write)
    assert f"not judged for redundancy: pair places/office, {COPY} (the own call of places/office failed)" in (
        out.getvalue())


def test_a_failed_group_call_says_its_memories_are_not_scored_and_not_judged(cast, run):
    # Found here, not by a JSON lookup: SQLite has no "contains" on JSON.
    group_call = next(call for call in ScoreCall.objects.filter(run=run, filter="skip_keys")
                      if "identity/core" in call.removed_keys)
    run = failed(run, pk=group_call.pk)

    html = page(cast, run)

    identity = next(g for g in run.result["groups"] if g["group"] == "identity")
    assert identity["importance"] is None
    assert "the group's call failed: its 2 memories are not scored" in html
    assert {"kind": "group", "group": "identity", "keys": identity["keys"], "why": "its call failed",
            "failed": []} in run.result["unjudged"]
    assert "group <span class=\"memkey\">identity</span>" in html
    # The pair that was judged keeps its flag.
    assert 'id="groups-redundant"' in html and "near-duplicate texts" in html


def test_a_run_whose_calls_all_answered_judges_every_set(cast, run):
    html = page(cast, run)
    assert run.result["unjudged"] == [] and "groups-unjudged" not in html
    assert "Sets not judged" not in html
