"""A run's chat template is fetched before its calls, its texts tokenized at once
within the task's share of the concurrency; a failure is left to the calls."""

import pytest

from scoring.client import InferenceClient
from scoring.context import chat_template, tokens
from scoring.engine.calls import fetch_template

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_templates_kept():
    # chat_template keeps templates for the process; a test database may hand
    # another test's agent id to this one.
    tokens._templates.clear()
    yield
    tokens._templates.clear()


@pytest.mark.parametrize("at_once", [1, 2])
def test_it_tokenizes_the_templates_texts_within_the_share_it_is_given(agent, tmp_path, at_once):
    from refserver.testing import run_refserver

    # A server of its own counts only these calls (the shared one may still
    # have other tests' calls in flight); they overlap if sent at once.
    with run_refserver(tmp_path / "fresh", "--latency-ms", "100") as fresh:
        agent.base_url = fresh.base_url
        with InferenceClient.for_agent(agent) as client:
            fetch_template(agent, client, at_once=at_once)
            stats = fresh.stats()
            [kept] = tokens._templates.values()
            tokens._templates.clear()
            # The same template as chat_template's own, one text after the other.
            assert chat_template(agent, client.tokenize) == kept

    assert stats["calls"]["tokenize"] == 2
    assert stats["max_concurrent_seen"] == at_once


def test_it_leaves_a_failure_to_the_calls(agent, ref):
    ref.control(fail_nth=[1, 2], fail_endpoints=["tokenize"], fail_mode="http500")
    with InferenceClient.for_agent(agent) as client:
        fetch_template(agent, client, at_once=2)  # no exception: nothing kept
        ref.control(fail_nth=[])
        assert not tokens._templates
        # The calls then fetch it themselves (with their retries).
        assert chat_template(agent, client.tokenize).header
