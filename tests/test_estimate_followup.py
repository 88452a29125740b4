"""An estimate run followed by an exact run of its top memories (issue 11): the
run page's block and button, the full mode's `keys`, the command line's --keys,
and the exact run's page comparing the two."""

import json
from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from scoring import modes
from scoring.context import Outline
from scoring.engine import run_inline, start_run
from scoring.models import Agent, ScoreCall, ScoringRun
from scoring.models.runs import Mode, RunStatus
from scoring.modes import estimate as estimate_mode
from tests.engine_support import make_snapshot, private_refserver  # noqa: F401  (its own server)
from tests.matrix_data import FAILED, matrix_run
from tests.test_command_export_matrix import export

KEYS = ["a", "b", "c", "d", "e"]
# Importance (sum of positive deltas): c 5.0, e 4.0, a 2.0, d 1.0, b 0.0.
DELTAS = [[1.5, 0.5, -0.3], [0.0, -1.0, 0.0], [2.0, 2.0, 1.0], [0.2, 0.8, 0.0], [0.0, 3.0, 1.0]]


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")


@pytest.fixture
def estimate(agent):
    run = matrix_run(agent, DELTAS, keys=KEYS, status=RunStatus.SUCCEEDED)
    ScoringRun.objects.filter(pk=run.pk).update(
        mode=Mode.ESTIMATE, params={"ablations": 16, "seed": 4},
        result={"calls_used": 17, "exact_calls": 6, "r2_median": 0.9, "cells": 15, "memories": 5},
    )
    run.refresh_from_db()
    return run


def exact_top(client, run, top):
    return client.post(reverse("run_exact_top", args=[run.pk]), {"top": top})


def started():
    return ScoringRun.objects.filter(mode=Mode.FULL)


def test_the_ranking_is_memory_importance_over_the_estimate_cells(estimate):
    assert estimate_mode.importance_ranking(estimate) == [("c", 5.0), ("e", 4.0), ("a", 2.0), ("d", 1.0),
                                                          ("b", 0.0)]
    assert estimate_mode.top_keys(estimate, 2) == ["c", "e"]



def test_a_memory_whose_cells_all_failed_is_not_ranked_as_zero(agent):
    run = matrix_run(agent, [[FAILED, FAILED], [0.0, 0.5]], keys=["x", "y"])
    assert estimate_mode.importance_ranking(run) == [("y", 0.5)]
    with pytest.raises(ValidationError, match="between 1 and 1"):
        estimate_mode.top_keys(run, 2)


def test_the_button_starts_a_full_run_of_exactly_the_top_n_keys(cast, estimate):
    response = exact_top(cast.client_for(cast.operator), estimate, "3")
    run = started().get()
    assert response.status_code == 302 and response.url == reverse("run_detail", args=[run.pk])
    assert run.snapshot_id == estimate.snapshot_id and run.created_by == cast.operator
    assert run.params == {"keys": ["c", "e", "a"], "source_run": estimate.pk}
    # N+1 calls: the baseline and one per key, in the snapshot's order.
    calls = ScoreCall.objects.filter(run=run).order_by("seq")
    assert run.calls_total == 4 == calls.count()
    assert [c.memory.key if c.memory else None for c in calls] == [None, "a", "c", "e"]
    client = cast.client_for(cast.viewer)
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "only 3 of its memories" in page and f"estimate run #{estimate.pk}</a>, scored exactly" in page
    listing = client.get(reverse("run_list")).content.decode()
    assert f"(3 memories, checks estimate #{estimate.pk})" in listing
    assert 'class="badge estimate"' in listing and "estimate (16 ablations)" in listing


@pytest.mark.parametrize("top, problem", [
    ("0", "must be between 1 and 5 (the memories this run estimated)"),
    ("6", "must be between 1 and 5 (the memories this run estimated)"),
    ("three", "must be a whole number"), ("", "must be a whole number"),
])
def test_a_bad_n_is_named_and_starts_nothing(cast, estimate, top, problem):
    response = exact_top(cast.client_for(cast.operator), estimate, top)
    assert response.status_code == 302 and response.url == reverse("run_detail", args=[estimate.pk])
    assert [str(m) for m in get_messages(response.wsgi_request)] == [f"Exact run not started. top: {problem}"]
    assert not started().exists()


def test_only_a_finished_estimate_run_has_a_button(cast, estimate, agent):
    exact = matrix_run(agent, DELTAS, keys=KEYS, status=RunStatus.SUCCEEDED)
    client = cast.client_for(cast.operator)
    exact_top(client, exact, "2")
    ScoringRun.objects.filter(pk=estimate.pk).update(status=RunStatus.RUNNING)
    exact_top(client, estimate, "2")
    assert started().count() == 1  # only the matrix_run above


def test_it_needs_the_operator_role_and_the_csrf_token(cast, estimate):
    for user in (cast.viewer, cast.reviewer, cast.outsider):
        assert exact_top(cast.client_for(user), estimate, "2").status_code == 403
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.operator)
    assert exact_top(client, estimate, "2").status_code == 403
    assert not started().exists()
    client.get(reverse("run_detail", args=[estimate.pk]))
    token = client.cookies["csrftoken"].value
    response = client.post(reverse("run_exact_top", args=[estimate.pk]), {"top": "2", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and started().get().params["keys"] == ["c", "e"]
    anonymous = Client().post(reverse("run_exact_top", args=[estimate.pk]), {"top": "2"})
    assert anonymous.status_code == 302 and "login" in anonymous.url
    assert started().count() == 1


def test_the_run_page_shows_the_block_and_the_button_to_an_operator_only(cast, estimate):
    page = cast.client_for(cast.operator).get(reverse("run_detail", args=[estimate.pk])).content.decode()
    assert 'id="estimate-detail"' in page and 'id="run-mode-detail"' in page
    assert page.index("<span class=\"memkey\">c</span>") < page.index("<span class=\"memkey\">e</span>")
    assert reverse("run_exact_top", args=[estimate.pk]) in page and 'name="top" value="5"' in page
    assert "csrfmiddlewaretoken" in page
    viewer = cast.client_for(cast.viewer).get(reverse("run_detail", args=[estimate.pk])).content.decode()
    assert 'id="estimate-detail"' in viewer and reverse("run_exact_top", args=[estimate.pk]) not in viewer
    heatmap = cast.client_for(cast.operator).get(reverse("heatmap", args=[estimate.pk])).content.decode()
    assert reverse("run_exact_top", args=[estimate.pk]) in heatmap and "ESTIMATE, fitted to 16 ablations" in heatmap
    # An exact run's page has the hook's wrapper and nothing in it.
    exact = matrix_run(estimate.agent, DELTAS, keys=KEYS)
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[exact.pk])).content.decode()
    assert 'id="run-mode-detail"' in page and "estimate-check" not in page


# --- the full mode's keys -------------------------------------------------------


def test_a_mode_refuses_unknown_parameters_naming_each(agent):
    with pytest.raises(ValidationError) as e:
        modes.get("full").clean_params(agent, {"keys": "a", "limit": 3, "top": 2})
    assert e.value.message_dict == {"limit": ["not a parameter of the full mode"],
                                    "top": ["not a parameter of the full mode"]}


def test_full_mode_keys_take_a_list_or_a_comma_separated_string(agent):
    full = modes.get("full")
    assert full.clean_params(agent, {"keys": " b, a ,, b"}) == {"keys": ["b", "a"]}
    assert full.clean_params(agent, {"keys": ["a", "c"]}) == {"keys": ["a", "c"]}
    assert full.clean_params(agent, {"keys": ""}) == {} == full.clean_params(agent, {"keys": " , "})
    with pytest.raises(ValidationError) as e:
        full.clean_params(agent, {"keys": [1, 2]})
    assert "must be memory keys" in e.value.message_dict["keys"][0]


def test_full_mode_refuses_unknown_keys_naming_each(estimate):
    with pytest.raises(ValidationError) as e:
        start_run(estimate.snapshot, "full", params={"keys": "a,nope,zzz"})
    assert e.value.message_dict == {"keys": ["no memory with keys 'nope' and 'zzz' in this snapshot"]}
    with pytest.raises(ValidationError) as e:
        start_run(estimate.snapshot, "full", params={"keys": "nope"})
    assert e.value.message_dict == {"keys": ["no memory with key 'nope' in this snapshot"]}
    many = [f"k{i}" for i in range(12)]
    with pytest.raises(ValidationError) as e:
        start_run(estimate.snapshot, "full", params={"keys": many})
    assert e.value.message_dict == {"keys": [
        "no memory with keys 'k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9' and 2 more in this snapshot"]}
    with pytest.raises(ValidationError) as e:
        start_run(estimate.snapshot, "full", params={"keys": "a", "source_run": estimate.pk + 99})
    assert "is not an estimate run of this snapshot" in e.value.message_dict["source_run"][0]
    assert not started().exists()
    # Blank: every memory; the snapshot page's form does not offer source_run.
    assert start_run(estimate.snapshot, "full", params={"keys": ""}).calls_total == 6
    assert "source_run" not in modes.get("full").page_form(estimate.snapshot).fields


def score(*args):
    out = StringIO()
    call_command("score", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def test_the_command_line_takes_keys(estimate):
    pk = int(score(estimate.snapshot_id, "--mode", "full", "--keys", "e, b"))
    run = ScoringRun.objects.get(pk=pk)
    assert run.params == {"keys": ["e", "b"]} and run.calls_total == 3
    with pytest.raises(CommandError, match="--keys does not apply to --mode estimate"):
        score(estimate.snapshot_id, "--mode", "estimate", "--keys", "a")
    with pytest.raises(CommandError, match="no memory with key 'x'"):
        score(estimate.snapshot_id, "--mode", "full", "--keys", "a,x")


# --- end to end, on the reference server ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_exact_run_compares_itself_with_the_estimate(cast, agent, ref):
    Agent.objects.filter(pk=agent.pk).update(base_url=ref.base_url, model="memscore-ref")
    agent.refresh_from_db()
    snapshot = make_snapshot(agent)
    source = run_inline(start_run(snapshot, Mode.ESTIMATE, params={"ablations": 16, "seed": 7}))
    assert source.status == RunStatus.SUCCEEDED, source.error
    # Its ablations leave out several keys each: the matrix still has every memory and response.
    data = json.loads(export(source.pk, "--format", "json"))
    keys = Outline(snapshot).keys()
    assert {c["memory_key"] for c in data["cells"]} == set(keys) and data["kind"] == "estimate"
    assert len(data["cells"]) == len(keys) * snapshot.response_count == source.cells.count()
    assert {c["kind"] for c in data["cells"]} == {"estimate"}
    client = cast.client_for(cast.operator)
    exact_top(client, source, "3")
    run = run_inline(started().get())
    assert run.status == RunStatus.SUCCEEDED and run.calls_total == 4
    assert run.params["keys"] == estimate_mode.top_keys(source, 3)

    check = estimate_mode.exact_check(run)
    assert [row["key"] for row in check["rows"]] and len(check["rows"]) == 3
    assert check["mae"] is not None and check["spearman"] is not None
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert 'id="estimate-check"' in page and reverse("run_detail", args=[source.pk]) in page
    assert "Rank agreement (Spearman)" in page and "estimate (16 ablations)" in page
    source_page = client.get(reverse("run_detail", args=[source.pk])).content.decode()
    assert f"Run #{run.pk}</a> · 3 memories" in source_page


def test_a_run_of_some_keys_is_not_the_memories_pages_matrix(cast, estimate, agent):
    from scoring.views.memories import latest_full_run

    whole = matrix_run(agent, DELTAS, keys=KEYS)
    some = matrix_run(agent, DELTAS[:2], keys=KEYS[:2])
    ScoringRun.objects.filter(pk=some.pk).update(params={"keys": KEYS[:2], "source_run": estimate.pk})
    assert latest_full_run(agent) == whole
