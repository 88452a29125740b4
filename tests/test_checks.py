"""Check connection (scoring.checks) against real reference servers: every
check passing on each server API, and each failure saying what to change."""

import math

import pytest

from scoring import checks
from scoring.checks import check_agent
from scoring.client import InferenceClient, PermanentError
from scoring.models import Agent, Node
from tests.engine_support import make_snapshot

NAMES = [
    "server answers", "model is served", "end of turn is one token",
    "nodes tokenize as the whole text", "stored ids match the server",
    "spans are the responses", "score is finite", "/train answers",
]


def by_name(results):
    assert [r.name for r in results] == NAMES
    return {r.name: r for r in results}


def failures(results):
    return [r.name for r in results if r.ok is False]


def test_it_passes_every_check_on_the_reference_server(agent):
    make_snapshot(agent)

    results = by_name(check_agent(agent))

    assert all(r.ok for r in results.values()), [(r.name, r.message) for r in results.values()]
    assert "memscore-ref" in results["model is served"].message
    assert "is token" in results["end of turn is one token"].message
    assert "score" in results["score is finite"].message and "nats" in results["score is finite"].message


@pytest.mark.parametrize("backend", ["vllm", "sglang", "memscore"])
def test_it_passes_on_each_server_api(db, api_servers, backend):
    server = api_servers[backend]
    trains = backend == "memscore"
    agent = Agent.objects.create(
        name=f"on-{backend}", base_url=server.root_url if backend != "memscore" else server.base_url,
        model="memscore-ref", backend=backend,
        training_target=Agent.TrainingTarget.TRAIN if trains else Agent.TrainingTarget.NONE,
    )
    make_snapshot(agent)

    results = by_name(check_agent(agent))

    assert failures(results.values()) == [], [(r.name, r.message) for r in results.values()]
    assert results["/train answers"].ok is (True if trains else None)


def test_it_says_train_is_missing_on_a_stock_server(db, api_servers):
    agent = Agent.objects.create(name="stock", base_url=api_servers["vllm"].base_url,
                                 model="memscore-ref", backend="vllm")

    result = by_name(check_agent(agent))["/train answers"]

    assert result.ok is False
    assert "set the agent's training target to none" in result.message


def test_it_skips_the_rest_when_the_server_does_not_answer(db):
    agent = Agent.objects.create(name="gone", base_url="http://127.0.0.1:9/v1", model="m")

    results = by_name(check_agent(agent))

    assert results["server answers"].ok is False
    assert "Check the agent's base URL (http://127.0.0.1:9/v1)" in results["server answers"].message
    assert all(r.ok is None for name, r in results.items() if name != "server answers")
    assert {r.message for name, r in results.items() if name != "server answers"} == {
        "not checked: the server does not answer"}


def test_it_says_why_it_skips_when_the_server_answers_with_an_error(db, monkeypatch):
    # The server answered (a 401 here; a 307 in test_client_redirects): it is not "not answering".
    def unauthorized(client):
        raise PermanentError("/v1/models: HTTP 401: invalid API key", status=401)
    monkeypatch.setattr(InferenceClient, "models", unauthorized)
    agent = Agent.objects.create(name="locked", base_url="http://127.0.0.1:9/v1", model="m")

    results = by_name(check_agent(agent))

    assert results["server answers"].ok is False and "Set the agent's API key" in results["server answers"].message
    assert {r.message for name, r in results.items() if name != "server answers"} == {
        "not checked: /v1/models failed"}


def test_it_says_why_the_spans_are_skipped_when_the_end_of_turn_is_not_tokenized(agent, monkeypatch):
    # The end of turn was never tokenized: nothing says it is "not one token".
    make_snapshot(agent)
    tokenize = InferenceClient.tokenize

    def refuse_the_end_of_turn(client, text):
        if text == agent.end_of_turn:
            raise PermanentError("/tokenize: HTTP 500: tokenizer crashed", status=500)
        return tokenize(client, text)
    monkeypatch.setattr(InferenceClient, "tokenize", refuse_the_end_of_turn)

    results = by_name(check_agent(agent))

    assert results["end of turn is one token"].ok is False
    assert "tokenizer crashed" in results["end of turn is one token"].message
    for name in ("spans are the responses", "score is finite"):
        assert results[name].ok is None
        assert results[name].message == "not checked: the server did not tokenize the end-of-turn text"


def test_it_names_the_models_served(agent):
    agent.model = "qwen-32b"

    result = by_name(check_agent(agent))["model is served"]

    assert result.ok is False
    assert "serves memscore-ref, not qwen-32b" in result.message and "model name" in result.message


def test_it_skips_the_snapshot_checks_without_a_snapshot(agent):
    results = by_name(check_agent(agent))

    for name in NAMES[3:7]:
        assert results[name].ok is None and "no snapshot" in results[name].message
    assert failures(results.values()) == []


def test_it_refuses_an_end_of_turn_of_two_tokens(agent):
    make_snapshot(agent)
    agent.end_of_turn = "<|im_end|>\n"

    results = by_name(check_agent(agent))

    assert results["end of turn is one token"].ok is False
    assert "tokenizes to 2 tokens" in results["end of turn is one token"].message
    assert "set the agent's end-of-turn" in results["end of turn is one token"].message
    assert results["spans are the responses"].ok is None
    assert results["score is finite"].ok is None
    assert results["score is finite"].message == "not checked: the end-of-turn setting is not one token"


def test_it_finds_where_nodes_tokenize_apart_from_their_whole_text(agent):
    # No newline or special token between nodes: "...by system" + "Question..." run together.
    agent.message_template = "{text} by {role}"
    agent.memory_template = "[{key}] {text} end"
    agent.save()
    make_snapshot(agent)

    result = by_name(check_agent(agent))["nodes tokenize as the whole text"]

    assert result.ok is False
    assert "differ from their whole text at position" in result.message
    assert "end the message and memory templates with a newline or a special token" in result.message


def test_it_finds_stored_ids_of_another_text(agent):
    snapshot = make_snapshot(agent)
    node = Node.objects.get(snapshot=snapshot, section="system", index=0)
    Node.objects.filter(pk=node.pk).update(text="You are someone else entirely.")

    result = by_name(check_agent(agent))["stored ids match the server"]

    assert result.ok is False
    assert result.message.startswith("system[0]'s stored ids differ")


def test_it_finds_responses_that_do_not_start_with_the_header(agent):
    make_snapshot(agent)
    # Nodes were tokenized with the default template; the header is now another.
    agent.message_template = "<|im_start|>{role} says\n{text}<|im_end|>\n"

    result = by_name(check_agent(agent))["spans are the responses"]

    assert result.ok is False
    assert "message template" in result.message


def test_it_fails_when_score_finds_other_responses_than_memscore(agent):
    # Memories rendered as assistant turns: /score counts them as responses too.
    agent.memory_template = "<|im_start|>assistant\n[{key}]\n{text}<|im_end|>\n"
    agent.save()
    make_snapshot(agent)

    results = by_name(check_agent(agent))

    assert results["spans are the responses"].ok is True
    assert results["score is finite"].ok is False
    assert "/v1/score returned 6 scores for 2 responses" in results["score is finite"].message


def test_it_fails_scores_that_are_not_finite(agent, monkeypatch):
    make_snapshot(agent)
    real = InferenceClient.for_agent

    def not_finite(agent):
        client = real(agent)
        monkeypatch.setattr(client, "score", lambda ids, spans, **kw: [math.nan] * len(spans))
        return client

    monkeypatch.setattr(checks.InferenceClient, "for_agent", not_finite)

    result = by_name(check_agent(agent))["score is finite"]

    assert result.ok is False and "must be finite" in result.message


def test_it_skips_train_for_an_export_only_agent(agent):
    agent.training_target = Agent.TrainingTarget.NONE

    result = by_name(check_agent(agent))["/train answers"]

    assert result.ok is None and "exported as JSONL" in result.message


def test_it_leaves_the_agent_as_it_was(agent):
    check_agent(agent)

    agent.refresh_from_db()
    assert agent.request_timeout == 300.0


def test_first_difference():
    assert checks.first_difference([1, 2, 3], [1, 2, 3]) is None
    assert checks.first_difference([1, 2, 3], [1, 5, 3]) == 1
    assert checks.first_difference([1, 2], [1, 2, 3]) == 2
