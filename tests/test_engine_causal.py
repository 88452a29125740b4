"""Causal windows (issue 10): a leave-one-out call asks only for the responses
after the memory's first appearance, and the matrix is the same as the naive
one's on every server API, to 1e-6, with the responses before each memory
stored as exactly zero and "unaffected".

The snapshot has identity memories (nothing to skip), a memory that appears
twice, and a memory after the last response (no request at all). Each API is
the reference server with only that surface (`--api`).
"""

import pytest
from django.template.defaultfilters import floatformat
from django.urls import reverse

from refserver.testing import run_refserver
from scoring.engine import run_inline, start_run
from scoring.models import Agent, CellScore, ScoreCall, ScoringRun
from tests.engine_support import conversation_doc, make_snapshot

pytestmark = pytest.mark.django_db(transaction=True)

APIS = ["memscore", "vllm", "sglang"]
LAST = "notes/after-the-end"


def doc_with_a_memory_after_the_last_response(name):
    doc = conversation_doc(name)
    doc["conversation"].append({"memory": LAST, "text": "Nothing follows this note.",
                                "timestamp": "2026-11-20T11:00:00Z"})
    return doc


@pytest.fixture(scope="module", params=APIS)
def server(request, tmp_path_factory):
    api = request.param
    with run_refserver(tmp_path_factory.mktemp(f"causal-{api}"), "--api", api) as handle:
        handle.api = api
        yield handle


@pytest.fixture
def agent(db, server):
    url = server.base_url if server.api == "memscore" else server.root_url
    return Agent.objects.create(name=f"on-{server.api}", base_url=url, model="memscore-ref",
                                backend=server.api, training_target=Agent.TrainingTarget.NONE)


def cells(run):
    """{(key, response index): (delta, state)}."""
    return {(k, i): (d, s) for k, i, d, s in
            run.cells.values_list("memory__key", "response__index", "delta", "state")}


def first_positions(snapshot):
    """{key: the conversation index of its first appearance, 0 for identity}."""
    found = {}
    for node in snapshot.nodes.exclude(memory_key="").order_by("index"):
        found.setdefault(node.memory_key, 0 if node.section == "identity" else node.index)
    for node in snapshot.nodes.filter(section="identity").exclude(memory_key=""):
        found[node.memory_key] = 0
    return found


def test_the_matrix_is_the_naive_one_with_the_responses_before_each_memory_unaffected(agent, server, settings):
    snapshot = make_snapshot(agent, doc_with_a_memory_after_the_last_response(agent.name))
    settings.MEMSCORE_CAUSAL_WINDOWS = False
    naive = run_inline(start_run(snapshot, "full"))
    settings.MEMSCORE_CAUSAL_WINDOWS = True
    before = server.stats()["scored_tokens"]
    causal = run_inline(start_run(snapshot, "full"))
    used = server.stats()["scored_tokens"]
    assert naive.status == causal.status == ScoringRun.Status.SUCCEEDED, (naive.error, causal.error)

    expected, found = cells(naive), cells(causal)
    assert found.keys() == expected.keys()
    positions = first_positions(snapshot)
    unaffected = set()
    for (key, index), (delta, state) in found.items():
        assert expected[key, index][1] == "scored"
        if index < positions[key]:
            # Exactly the naive zero: no token before the memory can change.
            assert (delta, state) == (0.0, "unaffected") and expected[key, index][0] == 0.0, (key, index)
            unaffected.add((key, index))
        else:
            assert state == "scored"
            assert delta == pytest.approx(expected[key, index][0], abs=1e-6), (key, index)
    # Identity memories skip nothing; the repeated key counts from its first
    # appearance; the memory after the last response is unaffected everywhere.
    assert not any(key.startswith("identity/") for key, _ in unaffected)
    assert not any(key == "people/alice" for key, _ in unaffected)
    assert all(state == "unaffected" for (key, _), (_, state) in found.items() if key == LAST)
    assert any(key == "people/carol" for key, _ in unaffected)

    calls = causal.calls.filter(filter=ScoreCall.Filter.SKIP_KEY).select_related("memory")
    last = calls.get(memory__key=LAST)
    assert (last.tokens, last.status) == (0, ScoreCall.Status.DONE)  # never sent
    asked = sum(c.tokens for c in causal.calls.all())
    whole = sum(c.prompt_tokens for c in causal.calls.all())
    if server.api == "vllm":
        # vLLM computes whole prompts: only the request for LAST is saved.
        assert asked == whole - last.prompt_tokens
    else:
        assert asked < whole * 0.9
        # What the server says it ran is what memscore asked for.
        assert used["computed"] - before["computed"] == asked


def test_a_failed_call_leaves_every_cell_failed_never_unaffected(agent, server, settings):
    settings.MEMSCORE_CALL_ATTEMPTS = 1
    snapshot = make_snapshot(agent)
    server.control(fail_nth=[3], fail_mode="http500")
    try:
        run = run_inline(start_run(snapshot, "full"), threads=1)
    finally:
        server.control()
    assert run.status == ScoringRun.Status.PARTIAL, run.error
    failed_call = run.calls.get(status=ScoreCall.Status.FAILED)
    states = set(CellScore.objects.filter(run=run, memory=failed_call.memory).values_list("state", "failed", "delta"))
    assert states == {("failed", True, None)}
    assert CellScore.objects.filter(run=run, state="unaffected").exists()


def test_the_run_page_shows_the_work_saved(agent, server, cast):
    run = run_inline(start_run(make_snapshot(agent), "full"))
    calls = run.calls.all()
    naive = sum(c.prompt_tokens for c in calls)
    asked = sum(c.tokens for c in calls)
    assert run.tokens_scored == asked
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk])).text
    assert "Tokens asked of the server" in page
    assert f"of {naive:,}" in page or f"of {naive}" in page
    # memscore's /score says what it computed and what its cache served (the
    # n-gram engine: nothing); SGLang only what its cache served; vLLM runs
    # every prompt token and says nothing of a cache.
    if server.api == "sglang":
        assert all(c.computed_tokens is None for c in calls)
        assert "Served from the server's cache" in page and "Computed by the server" not in page
    else:
        computed = sum(c.computed_tokens for c in calls if c.tokens)
        assert computed == (naive if server.api == "vllm" else asked)
        shown = f"{floatformat(computed, 'g')} <span class=\"muted small\">of the {floatformat(naive, 'g')} prompt"
        assert shown in page
        assert ("served from its cache" in page) == (server.api == "memscore")


@pytest.mark.parametrize("mode, params", [("estimate", {"ablations": 8, "seed": 7}), ("groups", {"threshold": 0.0})])
def test_calls_leaving_several_keys_out_ask_from_the_first_and_change_nothing(agent, server, settings, mode, params):
    # An estimate's ablations and a groups run's group calls (skip_keys) skip
    # what comes before the first key they leave out, as leave-one-out does.
    snapshot = make_snapshot(agent, doc_with_a_memory_after_the_last_response(agent.name))
    settings.MEMSCORE_CAUSAL_WINDOWS = False
    naive = run_inline(start_run(snapshot, mode, params=params))
    settings.MEMSCORE_CAUSAL_WINDOWS = True
    causal = run_inline(start_run(snapshot, mode, params=params))
    assert naive.status == causal.status == ScoringRun.Status.SUCCEEDED, (naive.error, causal.error)

    expected, found = cells(naive), cells(causal)
    assert found.keys() == expected.keys() and found
    for cell, (delta, state) in found.items():
        if state == "unaffected" and expected[cell][1] == "scored":  # a cell before the memory
            assert delta == expected[cell][0] == 0.0, cell
        else:
            assert state == expected[cell][1], cell
            assert delta == pytest.approx(expected[cell][0], abs=1e-6), cell
    keyed = causal.calls.filter(filter=ScoreCall.Filter.SKIP_KEYS)
    asked, whole = sum(c.tokens for c in keyed), sum(c.prompt_tokens for c in keyed)
    if server.api != "vllm":  # vLLM computes whole prompts
        assert asked < whole
    if mode == "estimate":
        assert any(None in c.result for c in keyed)  # responses before every key an ablation left out
