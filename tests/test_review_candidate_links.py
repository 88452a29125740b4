"""The candidate page links the response, each context node it shows and the
"… N earlier conversation nodes not shown" line to their places in the
snapshot (/snapshots/<id>/?node=<pk>, which the snapshot view sends to the
right page and anchor). The walkthrough found only a link to the snapshot's
first page, so a reviewer could not read what came before the response."""

from candidate_factory import detail_url, make_candidate
from django.urls import reverse

from scoring.models import Node
from scoring.models.snapshots import Section
from scoring.views.candidate_page import CONTEXT_TAIL


def node_url(node):
    return reverse("snapshot_detail", args=[node.snapshot_id]) + f"?node={node.pk}"


def long_candidate(agent, earlier=10):
    """A candidate whose response follows `earlier` conversation nodes."""
    c = make_candidate(agent)
    Node.objects.filter(pk=c.response_id).update(index=earlier)
    for index in range(3 - 1, earlier):
        Node.objects.create(snapshot=c.snapshot, section=Section.CONVERSATION, index=index,
                            role="user" if index % 2 else "assistant", text=f"turn {index}")
    return c


def test_the_response_and_each_shown_node_link_to_their_place_in_the_snapshot(cast, agent):
    c = long_candidate(agent)
    html = cast.client_for(cast.viewer).get(detail_url(c)).text
    assert f'href="{node_url(c.response)}"' in html
    shown = Node.objects.filter(snapshot=c.snapshot, index__gte=10 - CONTEXT_TAIL, index__lt=10)
    assert shown.count() == CONTEXT_TAIL
    for node in shown:
        assert f'href="{node_url(node)}"' in html, node.index


def test_the_not_shown_line_links_to_the_last_node_it_leaves_out(cast, agent):
    c = long_candidate(agent)
    html = cast.client_for(cast.viewer).get(detail_url(c)).text
    line = html[html.index('id="context-hidden"'):html.index("</p>", html.index('id="context-hidden"'))]
    assert f"{10 - CONTEXT_TAIL} earlier conversation nodes not shown" in line
    last_hidden = Node.objects.get(snapshot=c.snapshot, section=Section.CONVERSATION, index=10 - CONTEXT_TAIL - 1)
    assert f'href="{node_url(last_hidden)}"' in line


def test_each_link_lands_on_the_page_that_shows_the_node(cast, agent):
    c = long_candidate(agent)
    client = cast.client_for(cast.viewer)
    r = client.get(node_url(c.response))
    assert r.status_code == 302 and r["Location"].endswith(f"#node-{c.response_id}")
    assert f'id="node-{c.response_id}"' in client.get(r["Location"]).text


def test_a_short_context_has_no_not_shown_line(cast, agent):
    c = make_candidate(agent)
    html = cast.client_for(cast.viewer).get(detail_url(c)).text
    assert 'id="context-hidden"' not in html
    assert f'href="{node_url(c.response)}"' in html
