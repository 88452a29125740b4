"""A groups run on the pages and in the exports: its groups and member
importances on the run page, redundancy flags on the memories pages and the
heatmap (labelled with the run, keys escaped), and exports that name the
memories scored exactly and leave the group-only ones out, never as zeros."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from scoring.models import Memory
from tests.engine_support import (
    COPY,
    groups_run,
    private_refserver,  # noqa: F401  (this module's own server)
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(agent):
    return groups_run(agent)


def text_of(response):
    return response.content.decode()


def test_the_memories_page_flags_the_duplicates_with_their_nats_and_run(cast, agent, run):
    page = text_of(cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk])))

    flag = run.result["redundant"][0]
    assert sorted(flag["keys"]) == sorted(["places/office", COPY])
    assert "redundant with notes/&lt;b&gt;office&lt;/b&gt;" in page and "<b>office</b>" not in page
    assert "redundant with places/office" in page
    assert f"together {flag['together']:.2f} vs {flag['alone_sum']:.2f} nats alone" in page
    assert f'come from the groups run <a href="{reverse("run_detail", args=[run.pk])}">#{run.pk}</a>' in page
    assert page.count("redundant with") == 2


def test_a_memorys_page_shows_its_flag(cast, agent, run):
    memory = Memory.objects.get(agent=agent, key="places/office")
    page = text_of(cast.client_for(cast.viewer).get(reverse("memory_detail", args=[memory.pk])))
    assert "redundant with notes/&lt;b&gt;office&lt;/b&gt;" in page and f"run #{run.pk}" in page
    alice = Memory.objects.get(agent=agent, key="people/alice")
    assert "redundant with" not in text_of(cast.client_for(cast.viewer).get(reverse("memory_detail", args=[alice.pk])))


def test_the_run_page_shows_groups_members_and_flags(cast, run):
    page = text_of(cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk])))

    assert 'id="groups-detail"' in page and 'id="groups-table"' in page
    people = next(g for g in run.result["groups"] if g["group"] == "people")
    assert "scored member by member" in page and "group only" in page
    for member in people["members"]:
        assert f"{member['importance']:.3f} nats" in page
    flag = run.result["redundant"][0]
    assert f"together {flag['together']:.2f} nats, each alone summed {flag['alone_sum']:.2f} nats" in page
    assert "notes/&lt;b&gt;office&lt;/b&gt;" in page and "<b>office</b>" not in page
    # 11 calls against 10: said as costing more, never "instead of".
    assert (f"{run.calls_total} calls, more than the {run.result['exact_calls']} of the exact full matrix"
            in page)


def test_the_heatmap_lists_the_flags_and_the_group_only_memories(cast, run):
    page = text_of(cast.client_for(cast.viewer).get(reverse("heatmap", args=[run.pk])))
    assert 'id="heatmap-groups"' in page and 'id="heatmap-redundant"' in page
    assert "2 memories were scored only with their group and have no row here (unknown, not zero)" in page
    assert "<b>office</b>" not in page


def test_the_exports_name_the_exact_memories_and_leave_group_only_ones_out(cast, run):
    client = cast.client_for(cast.viewer)
    document = json.loads(b"".join(client.get(reverse("heatmap_cells_json", args=[run.pk])).streaming_content))

    assert document["kind"] == "exact"
    assert document["groups"]["group_only"] == ["identity/core", "identity/sam"]
    groups = document["groups"]
    left_out_alone = set(groups["exact_memories"]) | set(groups["failed_memories"])
    assert left_out_alone == {c["memory_key"] for c in document["cells"]}
    assert not {"identity/core", "identity/sam"} & {c["memory_key"] for c in document["cells"]}
    out = StringIO()
    call_command("export_matrix", run.pk, "--format", "json", stdout=out)
    assert json.loads(out.getvalue())["groups"] == document["groups"]
    out = StringIO()
    call_command("export_matrix", run.pk, "--format", "csv", stdout=out)
    assert "identity/" not in out.getvalue() and "people/alice" in out.getvalue()
