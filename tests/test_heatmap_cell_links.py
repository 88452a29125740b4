"""The heatmap's cell page links the memory and the response to their nodes in
the run's snapshot (`?node=`, which lands on the page holding the node with
its fold open): it named them, "conversation entry 3", without a way there."""

import pytest
from django.urls import reverse

from scoring.models import Agent, Memory, Node
from tests.matrix_data import matrix_run


@pytest.fixture
def run(db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    return matrix_run(agent, [[1.5, 0.2], [0.0, -0.7]], keys=["people/alice", "places/office"])


def test_it_links_the_memory_and_the_response_to_their_nodes(cast, run):
    memory, response_id = run.memories[1], run.response_ids[1]
    memory_node = Node.objects.get(snapshot=run.snapshot, memory=memory)
    client = cast.client_for(cast.viewer)
    # The page, and the fragment the heatmap swaps in under its canvas.
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        html = client.get(reverse("heatmap_cell", args=[run.pk, memory.pk, response_id]), **headers).text
        snapshot_url = reverse("snapshot_detail", args=[run.snapshot_id])
        assert (f'<a href="{snapshot_url}?node={memory_node.pk}" title="The memory in the snapshot">'
                f"identity[1]</a>") in html
        assert (f'<a href="{snapshot_url}?node={response_id}" title="The response in the snapshot">'
                f"conversation entry 3</a>") in html
    for node_id in (memory_node.pk, response_id):
        assert client.get(f"{snapshot_url}?node={node_id}")["Location"] == f"{snapshot_url}?page=1#node-{node_id}"


def test_a_memory_not_in_the_runs_snapshot_links_nowhere(cast, run):
    # Its text is the memory's current one: there is no node to go to.
    stranger = Memory.objects.create(agent=run.agent, key="new/one", text="Since the snapshot.")
    url = reverse("heatmap_cell", args=[run.pk, stranger.pk, run.response_ids[0]])
    html = cast.client_for(cast.viewer).get(url).text
    assert "not in this run's snapshot" in html
    assert html.count("?node=") == 1  # the response's only


def test_a_memory_met_twice_links_where_the_context_first_holds_it(cast, run):
    # Sections in the context's order (system, identity, journal, conversation),
    # not by name, where "conversation" comes first.
    memory = run.memories[1]
    first = Node.objects.get(snapshot=run.snapshot, memory=memory)
    later = Node.objects.create(snapshot=run.snapshot, section="conversation", index=99, memory=memory,
                                memory_key=memory.key, text="Again, later.", token_ids=[1], n_tokens=1)
    client = cast.client_for(cast.viewer)
    html = client.get(reverse("heatmap_cell", args=[run.pk, memory.pk, run.response_ids[0]])).text
    assert f"?node={first.pk}\" title=\"The memory in the snapshot\">identity[1]</a>" in html
    page = client.get(reverse("memory_detail", args=[memory.pk])).text
    assert page.index(f"?node={first.pk}") < page.index(f"?node={later.pk}")
