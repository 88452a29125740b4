"""The groups mode's parameters as the command line, the API and the start
form give them: an empty separator is refused, never replaced by "/"."""

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from scoring import modes
from scoring.forms import StartRunForm
from scoring.importing import import_snapshot
from scoring.models import ScoringRun
from tests.snapshot_data import snapshot_doc


@pytest.fixture
def agent(offline_agent):
    # No server is called: the run is refused before it is planned.
    return offline_agent


@pytest.fixture
def snapshot(agent):
    return import_snapshot(agent, snapshot_doc(token_ids=True))


def test_an_empty_separator_is_refused_naming_the_field(agent):
    groups = modes.get("groups")
    with pytest.raises(ValidationError) as e:
        groups.clean_params(agent, {"separator": ""})
    assert "must not be empty" in e.value.message_dict["separator"][0]
    # Not given at all: the default; given: kept as it is (a space is a separator too).
    assert groups.clean_params(agent, {})["separator"] == "/"
    assert groups.clean_params(agent, {"separator": None})["separator"] == "/"
    assert groups.clean_params(agent, {"separator": "_"})["separator"] == "_"
    assert groups.clean_params(agent, {"separator": " "})["separator"] == " "


def test_the_command_line_refuses_an_empty_separator(snapshot):
    with pytest.raises(CommandError, match="separator.*must not be empty"):
        call_command("score", str(snapshot.pk), "--mode", "groups", "--separator", "", stdout=StringIO())
    assert not ScoringRun.objects.exists()


def test_the_start_form_refuses_an_emptied_separator(snapshot, cast):
    form = StartRunForm({"mode": "groups", "separator": "", "threshold": "1"}, snapshot=snapshot)
    assert not form.is_valid()
    assert "must not be empty" in form.errors["separator"][0]
    client = cast.client_for(cast.operator)
    client.post(reverse("run_start", args=[snapshot.pk]), {"mode": "groups", "separator": ""})
    assert not ScoringRun.objects.exists()
