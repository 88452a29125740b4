"""The start-a-run form sent back refused (Django's test client): what was
sent kept, mode included, each error beside its field and named by its label
in the summary; nothing started."""

import re

import pytest
from django.urls import reverse

from scoring.importing import import_snapshot
from scoring.models import Agent, ScoringRun
from tests.snapshot_data import snapshot_doc


@pytest.fixture
def snapshot(db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    return import_snapshot(agent, snapshot_doc(token_ids=True))


def field_html(html, name):
    """The <div class="field"> holding the input or select called name."""
    for block in re.findall(r'<div class="field">(.*?)</div>\s*(?=<div class="field">|</fieldset>)', html, re.S):
        if f'name="{name}"' in block:
            return block
    raise AssertionError(f"no field {name}")


@pytest.mark.parametrize("data, errors", [
    ({"mode": "incremental", "max_age": "-1", "response_window": "0"},
     {"max_age": ("Max age (seconds)", "must be at least 0"),
      "response_window": ("Response window", "must be at least 1")}),
    ({"mode": "finetune", "count": "-1", "min_divergence": "abc"},
     {"count": ("Last entries", "must be at least 1"),
      "min_divergence": ("Minimum divergence (nats)", "must be a number")}),
    ({"mode": "estimate", "ablations": "0"}, {"ablations": ("Ablations (K)", "must be at least 8")}),
    ({"mode": "groups", "redundancy_margin": "-1"},
     {"redundancy_margin": ("Redundancy margin (nats)", "must be at least 0")}),
])
def test_refused_input_comes_back_with_its_values_and_labelled_errors(cast, snapshot, data, errors):
    client = cast.client_for(cast.operator)
    # Other modes' fields as the page sends them: kept as typed, ignored.
    response = client.post(reverse("run_start", args=[snapshot.pk]), {**data, "keys": "people/alice"})
    html = response.text
    assert response.status_code == 200
    assert f'<option value="{data["mode"]}" selected>' in html
    summary = html[html.index('id="run-form-errors"'):html.index("</ul>", html.index('id="run-form-errors"'))]
    for name, (label, message) in errors.items():
        assert f'<a href="#id_{name}">{label}</a>: {message}' in summary
        assert name not in summary.replace(f"#id_{name}", "")
        block = field_html(html, name)
        assert f'value="{data[name]}"' in block and message in block
    assert 'value="people/alice"' in field_html(html, "keys")
    assert not ScoringRun.objects.exists()
