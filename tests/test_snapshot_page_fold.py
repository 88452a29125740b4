"""The snapshot page, long snapshots: a conversation page shows its first nodes
and folds the rest (in the page, opened by a link to a node in it), long texts
are clamped with all of their text in the page, and the candidates button says
what it counts beside the Review badge's count."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scoring.importing import import_snapshot
from scoring.models import Candidate, Node
from scoring.views.snapshots import NODES_PER_PAGE, NODES_UNFOLDED
from tests.snapshot_data import snapshot_doc


def _conversation(n, memory_every=5, memory_key=None):
    """n conversation nodes, every `memory_every`-th a memory (keys topic/<i>)."""
    nodes = []
    for i in range(n):
        if i % memory_every == memory_every - 1:
            nodes.append({"memory": memory_key or f"topic/{i}", "text": f"memory text {i}", "token_ids": [0, 7, 1]})
        else:
            role = "user" if i % 2 == 0 else "assistant"
            nodes.append({"role": role, "text": f"message number {i}", "token_ids": [0, 5, 1]})
    return nodes


def _snapshot(agent, n, **kwargs):
    doc = snapshot_doc(token_ids=True)
    doc["conversation"] = _conversation(n, **kwargs)
    return import_snapshot(agent, doc)


def _fold(html):
    """The folded part's markup, from its <details> to its end."""
    start = html.index('<details class="ctx-fold"')
    return html[start:html.index("</details>", html.index("</ol>", start))]


def test_it_shows_the_first_nodes_and_folds_the_rest_of_the_page(cast, offline_agent):
    snapshot = _snapshot(offline_agent, 60)
    html = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk])).content.decode()
    before, fold = html[:html.index('<details class="ctx-fold"')], _fold(html)
    shown = [i for i in range(60) if f"message number {i}<" in before or f"memory text {i}<" in before]
    assert shown == list(range(NODES_UNFOLDED))
    # Nothing hidden: every other node is in the page, inside the fold, with its anchor.
    for node in Node.objects.filter(snapshot=snapshot, section="conversation", index__gte=NODES_UNFOLDED):
        assert f'id="node-{node.pk}"' in fold and f"{node.text}<" in fold
    assert '<details class="ctx-fold" id="conversation-fold">' in fold  # closed
    summary = re.search(r"<summary>(.*?)</summary>", fold, re.S).group(1)
    assert "the next 40 nodes" in summary and "conversation[20] to [59]" in summary
    # The memories in the fold are named in its summary, and still link to their pages.
    assert "with 8 memories" in summary and "topic/24, topic/29" in summary
    memory = Node.objects.get(snapshot=snapshot, section="conversation", index=54)
    assert f'href="{reverse("memory_detail", args=[memory.memory_id])}">topic/54</a>' in fold


def test_the_fold_counts_a_memory_in_it_several_times_as_one_memory(cast, offline_agent):
    # The stats card counts memories; the summary said "8 memories" of one
    # memory's 8 nodes (the demo: "30 memories" beside the card's 24).
    snapshot = _snapshot(offline_agent, 60, memory_key="prefs/music")
    html = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk])).content.decode()
    summary = " ".join(re.search(r"<summary>(.*?)</summary>", _fold(html), re.S).group(1).split())
    assert 'with 8 memory nodes (1 memory): <span class="keys">prefs/music</span>' in summary


def test_the_fold_can_be_closed_from_its_end(cast, offline_agent):
    snapshot = _snapshot(offline_agent, 60)
    html = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk])).content.decode()
    fold = _fold(html)
    last = Node.objects.get(snapshot=snapshot, section="conversation", index=59)
    end = fold[fold.index(f'id="node-{last.pk}"'):]
    # A button for snapshot.js to close it by; without JS, a link up to its summary.
    assert '<button type="button" data-fold-hide>Hide these 40 nodes</button>' in end
    assert '<a href="#conversation-fold" data-fold-top>' in end


def test_a_short_conversation_has_no_fold(cast, offline_agent):
    snapshot = _snapshot(offline_agent, NODES_UNFOLDED)
    html = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk])).content.decode()
    assert "ctx-fold" not in html.split("</style>", 1)[1]
    assert f"message number {NODES_UNFOLDED - 2}<" in html


def test_a_link_to_a_folded_node_lands_on_the_page_whose_fold_holds_it(cast, offline_agent):
    # The browser opens the fold for the #fragment (tests/browser/test_snapshot_fold.py).
    snapshot = _snapshot(offline_agent, NODES_PER_PAGE + 60)
    client = cast.client_for(cast.viewer)
    url = reverse("snapshot_detail", args=[snapshot.pk])
    node = Node.objects.get(snapshot=snapshot, section="conversation", index=NODES_PER_PAGE + 45)
    location = client.get(f"{url}?node={node.pk}")["Location"]
    assert location == f"{url}?page=2#node-{node.pk}"
    html = client.get(location).content.decode()
    assert f'<li id="node-{node.pk}"' in _fold(html)


def test_a_page_swapped_in_by_htmx_folds_its_rest_too(cast, offline_agent):
    snapshot = _snapshot(offline_agent, NODES_PER_PAGE + 60)
    url = reverse("snapshot_detail", args=[snapshot.pk])
    html = cast.client_for(cast.viewer).get(url + "?page=2", HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="context">')
    fold = _fold(html)
    assert "the next 40 nodes" in fold and f"conversation[{NODES_PER_PAGE + NODES_UNFOLDED}] to [259]" in fold
    assert "message number 258<" in fold and "message number 218<" not in fold


def test_the_fold_escapes_memory_keys(cast, offline_agent):
    snapshot = _snapshot(offline_agent, 30, memory_key="<img src=x onerror=alert(1)>")
    html = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk])).content.decode()
    summary = re.search(r"<summary>(.*?)</summary>", _fold(html), re.S).group(1)
    assert "&lt;img src=x onerror=alert(1)&gt;" in summary
    assert "<img src=x" not in html


def test_a_long_text_is_clamped_and_all_of_it_is_in_the_page(cast, offline_agent):
    doc = snapshot_doc(token_ids=True)
    text = "A long assistant answer, sentence after sentence. " * 40 + "THE VERY END."
    doc["conversation"][5]["text"] = text
    snapshot = import_snapshot(offline_agent, doc)
    html = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk])).content.decode()
    details = re.search(r"<details><summary class=\"body\">(.*?)</summary>(.*?)</details>", html, re.S)
    preview, body = details.groups()
    assert "THE VERY END." not in preview and len(preview) < 600
    assert "(show all 2,013 characters)" in preview and "(show less)" in preview
    assert body == f'<div class="body">{text}</div>'


# --- the candidates button -----------------------------------------------------

def _candidate(snapshot, index, **fields):
    response = Node.objects.get(snapshot=snapshot, section="conversation", index=index)
    return Candidate.objects.create(agent=snapshot.agent, snapshot=snapshot, response=response,
                                    response_key=f"r{index}", divergence=1.0, response_text=response.text, **fields)


@pytest.fixture
def four_candidates(cast, offline_agent):
    """A snapshot's four candidates, one of them waiting for rita's review."""
    snapshot = import_snapshot(offline_agent, snapshot_doc(token_ids=True))
    _candidate(snapshot, 2)                                       # waits for her
    _candidate(snapshot, 5).decide(cast.reviewer, "skip")          # she skipped it
    _candidate(snapshot, 7, status=Candidate.Status.APPROVED)      # settled
    _candidate(snapshot, 0, reserved_by=cast.reviewer2,            # rob holds it
               reserved_until=timezone.now() + timedelta(minutes=10))
    return snapshot


def test_the_candidates_button_says_how_many_wait_for_your_review_as_the_badge_does(cast, four_candidates):
    html = cast.client_for(cast.reviewer).get(reverse("snapshot_detail", args=[four_candidates.pk])).content.decode()
    assert "Candidates (4, 1 awaiting your review)</a>" in html
    badge = re.search(r'id="nav-pending"[^>]*>(\d+)</span>', html).group(1)
    assert badge == "1"


def test_a_reader_without_the_review_role_sees_the_total_only(cast, four_candidates):
    html = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[four_candidates.pk])).content.decode()
    assert "Candidates (4)</a>" in html and "awaiting" not in html
    assert 'title="4 candidates found in this snapshot, whatever their status"' in html
