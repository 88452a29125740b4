"""vLLM's batched score requests (issue 10): the agent's score_batch_tokens
sets how many prompts go in one /v1/completions request (0: one each), the
matrix is the same whatever the budget, and the tokens asked of the server,
as counted per call and shown on the run page, are what the server says it
computed.

The server is the reference server with only vLLM's surface (`--api vllm`).
"""

import pytest
from django.template.defaultfilters import floatformat
from django.urls import reverse

from refserver.testing import run_refserver
from scoring.client import InferenceClient
from scoring.context import snapshot_tokens
from scoring.engine import run_inline, start_run
from scoring.models import Agent, ScoringRun
from tests.engine_support import make_snapshot

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 4


@pytest.fixture(scope="module")
def vllm(tmp_path_factory):
    with run_refserver(tmp_path_factory.mktemp("vllm-batches"), "--api", "vllm") as handle:
        yield handle


@pytest.fixture
def agent(db, vllm):
    return Agent.objects.create(name="batched", base_url=vllm.root_url, model="memscore-ref", backend="vllm",
                                score_concurrency=THREADS, training_target=Agent.TrainingTarget.NONE)


def cells(run):
    return {(k, i): (d, s) for k, i, d, s in
            run.cells.values_list("memory__key", "response__index", "delta", "state")}


def scored(vllm, agent, snapshot, budget):
    """(run, score requests, tokens the server computed) of a full matrix at this budget."""
    agent.score_batch_tokens = budget
    agent.save()
    vllm.control()  # resets the call counters
    before = vllm.stats()["scored_tokens"]["computed"]
    run = run_inline(start_run(snapshot, "full"), threads=THREADS)
    assert run.status == ScoringRun.Status.SUCCEEDED, run.error
    stats = vllm.stats()
    return run, stats["calls"].get("score", 0), stats["scored_tokens"]["computed"] - before


def test_the_client_takes_the_agents_budget_and_only_vllm_batches(agent):
    for budget in (0, 1000, 65_536):
        agent.score_batch_tokens = budget
        with InferenceClient.for_agent(agent) as client:
            assert client.batch_tokens == budget
    agent.backend = "memscore"
    with InferenceClient.for_agent(agent) as client:
        assert client.batch_tokens == 0  # one prompt a request: /v1/score takes one


def test_a_smaller_budget_makes_more_requests_and_the_same_matrix(agent, vllm):
    snapshot = make_snapshot(agent, extra_memories=4)
    per_prompt = snapshot_tokens(snapshot).n_tokens
    one_each, requests_one, _ = scored(vllm, agent, snapshot, 0)
    # The calls sent at all: a memory after every response needs none.
    sent = one_each.calls.filter(tokens__gt=0).count()
    assert requests_one == sent

    # A budget below two prompts is one prompt a request too.
    single, requests_single, _ = scored(vllm, agent, snapshot, 2 * per_prompt - 1)
    # Four prompts a request: the first claim alone takes four calls.
    batched, requests_batched, _ = scored(vllm, agent, snapshot, 4 * per_prompt)
    assert requests_single == sent
    assert requests_batched < sent
    assert cells(single) == cells(batched) == cells(one_each)


@pytest.mark.parametrize("budget", [0, 65_536])
def test_tokens_asked_are_what_the_server_computed_and_the_page_says_so(agent, vllm, cast, budget):
    snapshot = make_snapshot(agent)
    run, _, computed = scored(vllm, agent, snapshot, budget)
    calls = list(run.calls.all())
    # vLLM computes each prompt it is sent whole; a call not sent computes nothing.
    assert run.tokens_scored == sum(c.tokens for c in calls) == computed
    assert all(c.tokens in (0, c.prompt_tokens) for c in calls)
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk])).text
    assert "Tokens asked of the server" in page
    naive = sum(c.prompt_tokens for c in calls)
    assert f"{floatformat(run.tokens_scored, 'g')} <span class=\"muted small\">of {floatformat(naive, 'g')}" in page
    assert "served from its cache" not in page and "Served from the server's cache" not in page  # vLLM does not say
    assert sum(c.computed_tokens for c in calls if c.tokens) == computed  # every prompt token it was sent
