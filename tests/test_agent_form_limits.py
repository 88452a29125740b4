"""The agent form refuses settings that would break the workflow, with one
message naming the real limit, and lists every problem at the top of the page
(the form is several screens tall). Approvals beyond the team are kept, with a
warning."""

import re

import pytest
from django.urls import reverse

from scoring.forms import AGENT_NUMBER_LIMITS
from scoring.models import Agent
from tests.test_views_agents import _valid_post


def _post_new(client, **overrides):
    return client.post(reverse("agent_create"), _valid_post(**overrides), follow=True)


@pytest.mark.parametrize("field, value", [
    ("required_approvals", "30000"), ("rejections_to_settle", "30000"),
    ("finetune_count", "9999999999999"), ("priority", "9223372036854775807"),
    ("incremental_max_age", str(10 * 365 * 24 * 3600)),
])
def test_it_refuses_numbers_beyond_sensible_limits(cast, field, value):
    response = _post_new(cast.client_for(cast.operator), **{field: value})
    errors = response.context["form"].errors[field]
    most = AGENT_NUMBER_LIMITS[field][1]
    assert errors == [f"Ensure this value is at most {most:,}."]  # as the help writes it
    assert not Agent.objects.filter(name="helper").exists()


@pytest.mark.parametrize("field", ["score_concurrency", "score_shards", "finetune_count",
                                   "required_approvals", "incremental_batch"])
def test_below_the_minimum_reads_the_same_for_every_value(cast, field):
    client = cast.client_for(cast.operator)
    said = {
        value: _post_new(client, **{field: value}).context["form"].errors[field]
        for value in ("-1", "0")
    }
    # One message with the real minimum (1), not "≥ 0" for -1 and then "≥ 1" for 0.
    assert said["-1"] == said["0"] == ["Ensure this value is at least 1."]


def test_the_limits_are_in_the_help_and_the_inputs(cast):
    html = cast.client_for(cast.operator).get(reverse("agent_create")).content.decode()
    assert "From 1 to 20." in html and "From 1 to 100,000." in html
    assert re.search(r'name="required_approvals"[^>]* max="20"', html)


def test_approvals_beyond_the_reviewers_are_saved_with_a_warning(cast):
    # The cast: two reviewers and an operator (who reviews too) may review.
    response = _post_new(cast.client_for(cast.operator), required_approvals="5", rejections_to_settle="4")
    agent = Agent.objects.get(name="helper")
    assert agent.required_approvals == 5
    said = [str(m) for m in response.context["messages"]]
    assert any("Approvals required before training is 5, but only 3 people may review now" in m for m in said)
    assert any("Rejections that reject a candidate is 4, but only 3 people" in m for m in said)


def test_approvals_within_the_team_warn_nothing(cast):
    response = _post_new(cast.client_for(cast.operator), required_approvals="3")
    assert Agent.objects.get(name="helper").required_approvals == 3
    assert not any("may review now" in str(m) for m in response.context["messages"])


def test_the_form_says_how_many_may_review(cast):
    html = cast.client_for(cast.operator).get(reverse("agent_create")).content.decode()
    assert "3 people may review now." in html


def test_it_refuses_two_special_tokens_as_the_end_of_turn(cast):
    response = _post_new(cast.client_for(cast.operator), end_of_turn="<|im_end|><|im_end|>")
    [error] = response.context["form"].errors["end_of_turn"]
    assert "is 2 special tokens" in error and "one token" in error
    assert not Agent.objects.filter(name="helper").exists()


@pytest.mark.parametrize("token", ["<|im_end|>", "<|eot_id|>", "</s>", "<end_of_turn>"])
def test_one_special_token_is_saved_with_a_pointer_to_the_server_check(cast, token):
    response = _post_new(cast.client_for(cast.operator), end_of_turn=token)
    assert Agent.objects.get(name="helper").end_of_turn == token
    assert any("Check connection" in str(m) for m in response.context["messages"])


def test_errors_are_listed_at_the_top_with_links_to_their_fields(cast):
    response = cast.client_for(cast.operator).post(
        reverse("agent_create"), _valid_post(score_concurrency="-1", required_approvals="30000", model="")
    )
    html = response.content.decode()
    summary = html[html.index('id="error-summary"'):html.index("</div>", html.index('id="error-summary"'))]
    assert "autofocus" in html[html.index('<div class="notice bad" id="error-summary"') - 5:][:200]
    assert "3 settings need fixing" in summary
    assert '<a href="#id_score_concurrency">Calls in flight</a>' in summary
    assert '<a href="#id_required_approvals">Approvals required before training</a>' in summary
    assert '<a href="#id_model">Model name</a>' in summary
    # Every link leads to a field of the page.
    for target in re.findall(r'href="#(id_\w+)"', summary):
        assert f'id="{target}"' in html
    # Near the button too, pointing back up.
    assert 'id="error-reminder"' in html and 'href="#error-summary"' in html


def test_a_form_without_errors_has_no_summary(cast):
    assert 'id="error-summary"' not in cast.client_for(cast.operator).get(reverse("agent_create")).content.decode()


def test_a_new_agents_key_help_does_not_mention_a_current_key(cast):
    poc = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m", api_key="sk-x")
    client = cast.client_for(cast.operator)
    new = client.get(reverse("agent_create")).context["form"]["api_key"].help_text
    edit = client.get(reverse("agent_edit", args=[poc.pk])).context["form"]["api_key"].help_text
    assert "current key" not in new and "Leave blank if the server needs none." in new
    assert "A key is set. Leave blank to keep it as it is." in edit
