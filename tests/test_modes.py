"""The registry of scoring modes: one per ScoringRun.Mode, parameters with the
agent's defaults, and the pages' and command line's view of them."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from scoring import modes
from scoring.forms import StartRunForm
from scoring.importing import import_snapshot
from scoring.management.commands.score import mode_options
from scoring.models import Agent, ScoringRun
from tests.snapshot_data import snapshot_doc


@pytest.fixture
def agent(db):
    # No server is called here; snapshots carry their token ids.
    return Agent.objects.create(
        name="poc", base_url="http://127.0.0.1:9/v1", model="m",
        incremental_batch=7, finetune_count=33, finetune_min_divergence=1.5,
    )


@pytest.fixture
def snapshot(agent):
    return import_snapshot(agent, snapshot_doc(token_ids=True))


def test_it_has_one_mode_per_database_choice():
    assert modes.names() == ScoringRun.Mode.values
    for mode in modes.all():
        assert modes.get(mode.name) is mode
        assert isinstance(mode.name, ScoringRun.Mode)


def test_it_names_the_mode_field_for_an_unknown_mode():
    for name in ("sideways", None, ""):
        with pytest.raises(ValidationError) as e:
            modes.get(name)
        assert "unknown mode" in e.value.message_dict["mode"][0]


def test_blank_parameters_take_the_agents_defaults(agent):
    assert modes.get("incremental").clean_params(agent, {"limit": ""}) == {
        "max_age": agent.incremental_max_age,
        "response_window": agent.incremental_response_window,
        "limit": 7,
    }
    assert modes.get("finetune").clean_params(agent, {"alternates": "yes"}) == {
        "count": 33, "min_divergence": 1.5, "alternates": True,
    }
    assert modes.get("full").clean_params(agent, {"key": "", "count": None}) == {}


def test_it_refuses_what_is_neither_true_nor_false(agent):
    finetune = modes.get("finetune")
    assert finetune.clean_params(agent, {"alternates": "0"})["alternates"] is False
    with pytest.raises(ValidationError) as e:
        finetune.clean_params(agent, {"alternates": "maybe"})
    assert "must be true or false" in e.value.message_dict["alternates"][0]


def test_the_start_form_validates_only_the_chosen_modes_parameters(snapshot):
    form = StartRunForm({"mode": "incremental", "limit": "", "max_age": "60", "key": "anything"},
                        snapshot=snapshot)
    assert form.is_valid(), form.errors
    assert form.params == {"max_age": 60, "response_window": snapshot.agent.incremental_response_window,
                           "limit": 7}

    form = StartRunForm({"mode": "memory"}, snapshot=snapshot)
    assert not form.is_valid()
    assert form.errors["key"] == ["Choose the memory to score."]


def test_the_start_form_shows_every_modes_parameters_with_their_defaults(snapshot):
    shown = {mode.name: form for mode, form in StartRunForm(snapshot=snapshot).param_forms()}
    assert set(shown) == {m.name for m in modes.all() if m.Params.base_fields}
    assert shown["finetune"]["count"].initial == 33
    assert shown["incremental"]["limit"].initial == 7
    # The page offers the snapshot's memory keys to choose from.
    assert "identity/core" in str(shown["memory"]["key"])


def test_the_command_line_has_an_option_for_every_parameter():
    options = mode_options()
    for mode in modes.all():
        for name in mode.Params.base_fields:
            assert mode.name in options[name][0]


HUGE = "99999999999999999999"


@pytest.mark.parametrize("mode, name, value, message", [
    ("incremental", "max_age", HUGE, "must be at most 2147483647"),
    ("incremental", "max_age", "-1", "must be at least 0"),
    ("incremental", "response_window", "0", "must be at least 1"),
    ("incremental", "response_window", HUGE, "must be at most"),
    ("incremental", "limit", "0", "must be at least 1"),
    ("finetune", "count", "0", "must be at least 1"),
    ("finetune", "count", HUGE, "must be at most"),
    ("finetune", "min_divergence", "-3", "must be at least 0"),
    ("finetune", "min_divergence", "inf", "must be a number"),
    ("finetune", "min_divergence", "nan", "must be a number"),
    ("finetune", "min_divergence", "1e999", "must be a number"),
    ("memory", "key", "a\x00b", "Null characters are not allowed"),
])
def test_it_refuses_a_parameter_out_of_range_naming_it(agent, mode, name, value, message):
    with pytest.raises(ValidationError) as e:
        modes.get(mode).clean_params(agent, {name: value})
    assert message in e.value.message_dict[name][0]


def test_it_plans_with_the_largest_max_age_it_takes(snapshot):
    # The bound is what timedelta and a date can hold (was an OverflowError).
    params = modes.get("incremental").clean_params(snapshot.agent, {"max_age": str(2**31 - 1)})
    form = StartRunForm({"mode": "incremental", "max_age": str(2**31 - 1)}, snapshot=snapshot)
    assert form.is_valid(), form.errors
    assert params["max_age"] == 2**31 - 1


def test_the_start_page_answers_a_huge_max_age_with_a_message(snapshot, cast):
    client = cast.client_for(cast.operator)
    response = client.post(reverse("run_start", args=[snapshot.pk]),
                           {"mode": "incremental", "max_age": HUGE})
    assert response.status_code == 200
    assert "Max age (seconds)</a>: must be at most 2147483647" in response.content.decode()
    assert not ScoringRun.objects.exists()
