"""Every aria-describedby on the forms points at an element that exists (Django
links a field to "<id>_helptext"; the pages gave the help other ids or none,
so screen readers read no help at all)."""

import re

import pytest
from django.urls import reverse

from scoring.importing import import_snapshot
from scoring.models import Agent
from tests.snapshot_data import snapshot_doc

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")


def described_by_targets(html):
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    wanted = {t for group in re.findall(r'aria-describedby="([^"]+)"', html) for t in group.split()}
    return wanted, wanted - ids


@pytest.mark.parametrize("page", ["agent_create", "agent_edit", "snapshot_upload", "snapshot_detail"])
def test_every_field_help_is_linked(cast, agent, page):
    snapshot = import_snapshot(agent, snapshot_doc(token_ids=True))
    args = {"agent_create": [], "agent_edit": [agent.pk], "snapshot_upload": [agent.pk],
            "snapshot_detail": [snapshot.pk]}[page]
    html = cast.client_for(cast.operator).get(reverse(page, args=args)).text
    wanted, missing = described_by_targets(html)
    assert wanted, "the page has fields with help"
    assert not missing
