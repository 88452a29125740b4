"""The agent form as a browser sends it (issue 12, defects 8 and 11): a new
agent starts from the default chat templates, and saving with one change
logs that one field (browsers send a textarea's line breaks as CRLF)."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from scoring.models import Activity, Agent
from scoring.models.agents import DEFAULT_MEMORY_TEMPLATE, DEFAULT_MESSAGE_TEMPLATE


class FormValues(HTMLParser):
    """What a browser would submit for a page's form: inputs, selects and textareas."""

    def __init__(self):
        super().__init__()
        self.values, self._textarea, self._select, self._option = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "checkbox", "password"):
            self.values[name] = attrs.get("value", "")
        elif tag == "input" and name and attrs.get("type") == "checkbox" and "checked" in attrs:
            self.values[name] = "on"
        elif tag == "textarea":
            self._textarea, self.values[name] = name, ""
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.values[self._select] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data


def form_values(html):
    parser = FormValues()
    parser.feed(html)
    values = parser.values
    for name in ("message_template", "memory_template"):
        # A textarea drops the newline right after its tag; browsers post CRLF.
        values[name] = values[name].removeprefix("\n").replace("\n", "\r\n")
    values.pop("csrfmiddlewaretoken", None)
    return values


def test_a_new_agent_starts_from_the_default_templates(cast):
    page = cast.client_for(cast.operator).get(reverse("agent_create")).text
    values = form_values(page)
    assert values["message_template"].replace("\r\n", "\n") == DEFAULT_MESSAGE_TEMPLATE
    assert values["memory_template"].replace("\r\n", "\n") == DEFAULT_MEMORY_TEMPLATE


def test_saving_one_change_logs_one_changed_field(cast):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    client = cast.client_for(cast.operator)
    values = form_values(client.get(reverse("agent_edit", args=[agent.pk])).text)
    values["required_approvals"] = "3"

    response = client.post(reverse("agent_edit", args=[agent.pk]), values)

    assert response.status_code == 302, response.content.decode()[:2000]
    entry = Activity.objects.get(verb="changed agent")
    assert entry.detail["fields"] == ["required_approvals"]
    # What it was and what it is now: a lead reads the change, not only its name.
    assert entry.detail["changes"] == {"required_approvals": "1 → 3"}
    page = client.get(reverse("activity_list")).text
    assert "required approvals 1 → 3" in page
    agent.refresh_from_db()
    assert agent.message_template == DEFAULT_MESSAGE_TEMPLATE  # stored with LF, as before


@pytest.mark.django_db
def test_every_choice_of_the_agent_form_fits_a_phones_select():
    # A native select on a 390 px phone (Safari, Firefox) shows about 36
    # characters of its chosen label and cuts the rest: the long explanations
    # belong in the fields' help texts. "memscore (/score protocol, e.g. the
    # reference server)" read "memscore (/score protocol, e.g. the re".
    from scoring.forms.agent import AgentForm

    form = AgentForm()
    labels = {
        (name, str(label))
        for name, field in form.fields.items() if hasattr(field, "choices")
        for _, label in field.choices
    }
    assert labels
    assert [(name, label) for name, label in sorted(labels) if len(label) > 32] == []


def test_no_help_text_of_the_agent_form_carries_markup_the_page_would_show(db):
    # The pages escape help texts (a token like <|im_end|> shows as itself):
    # Markdown's backticks showed as they were.
    from scoring.forms.agent import AgentForm

    shown = {name: str(field.help_text) for name, field in AgentForm().fields.items()}
    assert [name for name, text in shown.items() if "`" in text] == []


def test_raising_the_approvals_says_what_becomes_of_candidates_already_approved(cast, agent):
    from candidate_factory import make_approved

    make_approved(agent, 2)
    client = cast.client_for(cast.operator)
    values = form_values(client.get(reverse("agent_edit", args=[agent.pk])).text)
    values["required_approvals"] = "3"

    page = client.post(reverse("agent_edit", args=[agent.pk]), values, follow=True).text

    assert "2 candidates approved under the earlier rule stay approved and can be sent to training as they are" in (
        page)


def test_settings_that_stop_or_flood_background_scoring_are_said_on_saving(cast):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    client = cast.client_for(cast.operator)
    values = form_values(client.get(reverse("agent_edit", args=[agent.pk])).text)
    values.update(weight_alpha="0", incremental_max_age="0", incremental_enabled="on")

    page = client.post(reverse("agent_edit", args=[agent.pk]), values, follow=True).text

    assert "Weight alpha is 0: a new score never moves a memory&#x27;s weight" in page
    assert "Re-score after is 0 seconds: every memory is due at every background sweep" in page


def test_changing_the_samples_context_says_which_candidates_keep_the_old_one(cast, agent):
    from candidate_factory import make_approved, make_candidate

    make_approved(agent, 2)  # reviewed: they keep the context their reviewers saw
    make_candidate(agent)  # unreviewed: the next fine-tune run refreshes it
    client = cast.client_for(cast.operator)
    values = form_values(client.get(reverse("agent_edit", args=[agent.pk])).text)
    values["training_context"] = "without_memories"

    page = client.post(reverse("agent_edit", args=[agent.pk]), values, follow=True).text

    assert ("3 candidates not yet trained were made with the earlier samples&#x27; context and keep it: the next "
            "fine-tune run gives the new one to those no one has reviewed") in page
