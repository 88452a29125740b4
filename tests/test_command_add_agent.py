"""add_agent's server settings: --backend, --priority, --training-target, --prefix-ids, --end-of-turn."""

import io

import pytest
from django.core.management import CommandError, call_command

from scoring.models import Agent


def _add(*args):
    call_command("add_agent", "helper", "--model", "m", *args, stdout=io.StringIO())
    return Agent.objects.get(name="helper")


def test_the_default_is_the_memscore_protocol_with_train_and_no_priority(db):
    agent = _add("--url", "http://127.0.0.1:8765/v1")
    assert (agent.backend, agent.training_target, agent.priority) == ("memscore", "train", None)
    assert (agent.prefix_ids, agent.end_of_turn) == ([], "<|im_end|>")


@pytest.mark.parametrize("backend", ["vllm", "sglang"])
def test_a_stock_server_defaults_to_no_training_target(db, backend):
    agent = _add("--url", "http://gpu-1:8000", "--backend", backend)
    assert (agent.backend, agent.training_target, agent.base_url) == (backend, "none", "http://gpu-1:8000")


def test_it_takes_every_server_setting(db):
    agent = _add("--url", "http://gpu-1:8000/v1", "--backend", "vllm", "--priority", "3",
                 "--training-target", "train", "--prefix-ids", "[128000]", "--end-of-turn", "<|eot_id|>")
    assert (agent.priority, agent.training_target) == (3, "train")
    assert (agent.prefix_ids, agent.end_of_turn) == ([128000], "<|eot_id|>")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "tgi"], "invalid choice"),
        (["--prefix-ids", "1,2"], "--prefix-ids must be a JSON list"),
        (["--prefix-ids", '["a"]'], "invalid agent: --prefix-ids: "),
        (["--concurrency", "0"], "invalid agent: --concurrency: "),
        (["--url", "gpu-1"], "invalid agent: --url: Enter an http"),  # the last --url wins
    ],
)
def test_it_refuses_bad_server_settings(db, args, message):
    with pytest.raises(CommandError, match=message):
        _add("--url", "http://gpu-1:8000", *args)
    assert not Agent.objects.exists()


def test_it_refuses_a_name_of_digits_only_which_reads_as_another_agents_id(db):
    # export_samples 7 and send_training 7 would take agent #7, not this one.
    with pytest.raises(CommandError, match="NAME: A name of digits only reads as another agent.s id"):
        call_command("add_agent", "7", "--url", "http://gpu-1:8000", "--model", "m", stdout=io.StringIO())
    assert not Agent.objects.exists()
    call_command("add_agent", "agent-7", "--url", "http://gpu-1:8000", "--model", "m", stdout=io.StringIO())
    assert Agent.objects.get().name == "agent-7"
