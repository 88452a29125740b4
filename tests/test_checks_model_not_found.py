"""A 404 that says the model does not exist is advice about the model name, not
the path: on Check connection (scoring.checks) and on import, on each server
API of the reference server (whose vLLM surface answers vLLM's error shape,
"The model ... does not exist" style, with 404). A 404 for a path the server
does not have keeps the path and base URL hint."""

import pytest

from scoring.checks import advice, check_agent
from scoring.client import InferenceClient, PermanentError, unknown_model
from scoring.importing import TokenizeError, import_snapshot
from scoring.models import Agent
from tests.snapshot_data import snapshot_doc

EOT = "end of turn is one token"


def _agent(server, backend, model="m", base_url=None):
    return Agent.objects.create(
        name=f"{backend}-{model}"[:40], model=model, backend=backend,
        base_url=base_url or (server.base_url if backend == "memscore" else server.root_url),
    )


@pytest.mark.parametrize("backend", ["memscore", "vllm", "sglang"])
def test_a_wrong_model_name_is_advice_about_the_model_name(db, api_servers, backend):
    agent = _agent(api_servers[backend], backend)

    result = {r.name: r for r in check_agent(agent)}[EOT]

    assert result.ok is False
    assert "does not exist" in result.message  # the server's own words
    assert "check the agent's model name ('m')" in result.message
    assert "no such path" not in result.message and "base URL" not in result.message


@pytest.mark.parametrize("backend", ["memscore", "vllm", "sglang"])
def test_an_import_with_a_wrong_model_name_says_so(db, api_servers, backend):
    agent = _agent(api_servers[backend], backend)

    with pytest.raises(TokenizeError) as raised:
        import_snapshot(agent, snapshot_doc(agent=agent.name))

    assert "check the agent's model name ('m')" in str(raised.value)
    assert "base URL" not in str(raised.value)


@pytest.mark.parametrize("backend", ["memscore", "vllm", "sglang"])
def test_a_path_the_server_does_not_have_keeps_the_path_hint(db, api_servers, backend):
    server = api_servers[backend]
    # The right model, a base URL one folder off: the server has no such path.
    agent = _agent(server, backend, model="memscore-ref", base_url=f"{server.root_url}/nope/v1")

    with InferenceClient.for_agent(agent) as client, pytest.raises(PermanentError) as raised:
        client.tokenize("hello")

    error = raised.value
    assert error.status == 404 and not unknown_model(error)
    assert "base URL" in str(error) and "model name" not in str(error)
    assert "The server has no such path: check the agent's server API" in advice(error, agent)


@pytest.mark.parametrize("message, is_model", [
    # vLLM (>= 0.10 and before), OpenAI, Ollama, the reference server
    ("/tokenize HTTP 404: The model `m` does not exist.", True),
    ("/v1/completions HTTP 404: The model `Qwen/Qwen2.5-7B` does not exist or you do not have access to it.",
     True),
    ('/v1/completions HTTP 404: model "m" not found, try pulling it first', True),
    ("/v1/tokenize HTTP 404: model 'm' does not exist; this server serves 'memscore-ref'", True),
    # no such path: FastAPI's body, the reference server's
    ("/tokenize HTTP 404: Not Found", False),
    ("/v1/models HTTP 404: not found: GET /v1/models", False),
    ("/v1/train/x HTTP 404: no training job 'x'", False),
])
def test_which_404s_name_the_model(message, is_model):
    assert unknown_model(PermanentError(message, status=404)) is is_model
    assert unknown_model(PermanentError(message, status=400)) is False
