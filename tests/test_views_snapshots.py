"""Snapshot pages: upload (with every error shown), the conversation view, the start-run form."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from scoring.forms import StartRunForm
from scoring.importing import import_snapshot
from scoring.models import Activity, Candidate, Memory, Node, ScoringRun, Snapshot
from scoring.models.runs import Mode, RunStatus
from tests.snapshot_data import BAD_CASES, MEMORY_KEYS, NODES, RESPONSES, as_bytes, snapshot_doc
from tests.snapshot_hardening import HARD_CASES


def _counts():
    return (Snapshot.objects.count(), Node.objects.count(), Memory.objects.count())


def _file(content, name="snapshot.json"):
    return SimpleUploadedFile(name, content, content_type="application/json")


# --- upload ---------------------------------------------------------------------

def test_it_imports_an_uploaded_file(cast, offline_agent):
    client = cast.client_for(cast.operator)
    url = reverse("snapshot_upload", args=[offline_agent.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"file": _file(as_bytes(snapshot_doc(token_ids=True)))}, follow=True)
    snapshot = Snapshot.objects.get()
    assert response.redirect_chain == [(reverse("snapshot_detail", args=[snapshot.pk]), 302)]
    assert (snapshot.node_count, snapshot.memory_count, snapshot.response_count) == (NODES, MEMORY_KEYS, RESPONSES)
    assert snapshot.source == Snapshot.Source.UPLOAD and snapshot.imported_by == cast.operator
    assert f"{NODES} nodes" in response.content.decode()  # the success message
    assert Activity.objects.get().actor == cast.operator


def test_it_tokenizes_an_uploaded_file_with_the_server(cast, agent):
    response = cast.client_for(cast.operator).post(
        reverse("snapshot_upload", args=[agent.pk]), {"file": _file(as_bytes(snapshot_doc()))}
    )
    assert response.status_code == 302
    snapshot = Snapshot.objects.get()
    assert snapshot.token_count > NODES
    assert all(n.token_ids for n in snapshot.nodes.all())


def test_it_shows_every_error_on_the_form_and_imports_nothing(cast, offline_agent):
    client = cast.client_for(cast.operator)
    url = reverse("snapshot_upload", args=[offline_agent.pk])
    for case_id, mutate, message in BAD_CASES:
        doc = snapshot_doc(token_ids=True)
        mutate(doc)
        response = client.post(url, {"file": _file(as_bytes(doc))})
        assert response.status_code == 200, case_id
        errors = response.context["form"].errors["file"]
        assert any(e.startswith(message) for e in errors), (case_id, errors)
        # Field paths and quotes are shown escaped, exactly once per error.
        assert "The snapshot was not imported" in response.content.decode()
    assert _counts() == (0, 0, 0)
    assert not Activity.objects.exists()


def test_it_lists_several_errors_at_once(cast, offline_agent):
    doc = snapshot_doc(token_ids=True)
    doc["taken_at"] = "soon"
    doc["conversation"][3]["memory"] = "people/alice"
    response = cast.client_for(cast.operator).post(
        reverse("snapshot_upload", args=[offline_agent.pk]), {"file": _file(as_bytes(doc))}
    )
    html = response.content.decode()
    assert "taken_at: not an ISO 8601 date-time" in html
    assert "conversation[3]: a node has either &quot;role&quot; or &quot;memory&quot;, not both" in html
    assert "2 problems" in html


def test_it_rejects_bad_json_and_a_missing_file(cast, offline_agent):
    client = cast.client_for(cast.operator)
    url = reverse("snapshot_upload", args=[offline_agent.pk])
    response = client.post(url, {"file": _file(b"{not json")})
    assert response.context["form"].errors["file"][0].startswith("snapshot: not valid JSON")
    response = client.post(url, {})
    assert "file" in response.context["form"].errors
    assert _counts() == (0, 0, 0)


def test_it_shows_a_tokenize_failure_and_imports_nothing(cast, offline_agent):
    response = cast.client_for(cast.operator).post(
        reverse("snapshot_upload", args=[offline_agent.pk]), {"file": _file(as_bytes(snapshot_doc()))}
    )
    assert response.status_code == 200
    assert "Nothing was imported" in response.content.decode()
    assert "cannot connect" in str(response.context["form"].non_field_errors())
    assert _counts() == (0, 0, 0)


@pytest.mark.parametrize("who", ["viewer", "reviewer", "outsider"])
def test_it_refuses_uploads_without_the_role(cast, offline_agent, who):
    client = cast.client_for(getattr(cast, who))
    url = reverse("snapshot_upload", args=[offline_agent.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"file": _file(as_bytes(snapshot_doc(token_ids=True)))}).status_code == 403
    assert _counts() == (0, 0, 0)


def test_it_enforces_csrf_on_upload(cast, offline_agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.operator)
    url = reverse("snapshot_upload", args=[offline_agent.pk])
    assert client.post(url, {"file": _file(as_bytes(snapshot_doc(token_ids=True)))}).status_code == 403
    assert _counts() == (0, 0, 0)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(url).content.decode()).group(1)
    response = client.post(url, {"file": _file(as_bytes(snapshot_doc(token_ids=True))), "csrfmiddlewaretoken": csrf})
    assert response.status_code == 302 and Snapshot.objects.count() == 1


@pytest.mark.parametrize("case_id, build, message", HARD_CASES, ids=[c[0] for c in HARD_CASES])
def test_input_the_database_cannot_hold_is_shown_on_the_form(cast, offline_agent, case_id, build, message):
    response = cast.client_for(cast.operator).post(
        reverse("snapshot_upload", args=[offline_agent.pk]), {"file": _file(build())}
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["file"]
    assert any(e.startswith(message) for e in errors), errors
    assert _counts() == (0, 0, 0)


def test_uploading_the_same_snapshot_again_shows_the_first(cast, offline_agent):
    client = cast.client_for(cast.operator)
    url = reverse("snapshot_upload", args=[offline_agent.pk])
    client.post(url, {"file": _file(as_bytes(snapshot_doc(token_ids=True)))})
    first = Snapshot.objects.get()
    response = client.post(url, {"file": _file(as_bytes(snapshot_doc(token_ids=True)))}, follow=True)
    assert response.redirect_chain == [(reverse("snapshot_detail", args=[first.pk]), 302)]
    assert "already imported" in response.content.decode()
    assert Snapshot.objects.count() == 1


# --- the snapshot page ------------------------------------------------------------

def test_it_shows_the_context_as_a_conversation(cast, offline_agent):
    snapshot = import_snapshot(offline_agent, snapshot_doc(token_ids=True))
    response = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    office = Memory.objects.get(key="places/office")
    assert f'href="{reverse("memory_detail", args=[office.pk])}">places/office</a>' in html
    assert "Desk 14 at Platform; the code is 4471#." in html
    assert '<span class="who">assistant</span>' in html and '<span class="who">memory</span>' in html
    assert "2026-11-20 11:58:09" in html
    for section in ("System", "Identity", "Journal", "Conversation"):
        assert f"<h3>{section} " in html
    assert f"{reverse('candidate_list')}?snapshot={snapshot.pk}" in html


def test_it_escapes_model_text(cast, offline_agent):
    doc = snapshot_doc(token_ids=True)
    doc["conversation"][2]["text"] = "<script>alert('pwned')</script>"
    doc["conversation"][4]["memory"] = "<img src=x onerror=alert(1)>"
    snapshot = import_snapshot(offline_agent, doc)
    html = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk])).content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_it_collapses_long_texts(cast, offline_agent):
    doc = snapshot_doc(token_ids=True)
    doc["journal"][0]["text"] = "A long journal entry. " * 100
    snapshot = import_snapshot(offline_agent, doc)
    html = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk])).content.decode()
    assert html.count("<details><summary") == 1
    assert "show all 2,200 characters" in html


def test_it_pages_a_long_conversation_and_swaps_pages_with_htmx(cast, offline_agent):
    doc = snapshot_doc(token_ids=True)
    doc["conversation"] = [
        {"role": "user" if i % 2 == 0 else "assistant", "text": f"message number {i}", "token_ids": [0, 5, 1]}
        for i in range(450)
    ]
    snapshot = import_snapshot(offline_agent, doc)
    client = cast.client_for(cast.viewer)
    url = reverse("snapshot_detail", args=[snapshot.pk])

    first = client.get(url).content.decode()
    assert "message number 199<" in first and "message number 200<" not in first
    assert "page 1 of 3" in first

    fragment = client.get(url + "?page=3", HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert html.lstrip().startswith('<div id="context">')
    assert "<html" not in html and "topbar" not in html and "Start a run" not in html
    assert "message number 449<" in html and "message number 399<" not in html

    # A link to a node lands on the page that shows it.
    node = Node.objects.get(snapshot=snapshot, section="conversation", index=321)
    response = client.get(f"{url}?node={node.pk}")
    assert response["Location"] == f"{url}?page=2#node-{node.pk}"


@pytest.mark.parametrize(
    "node, notice",
    [
        ("99999", "There is no node 99999 in this snapshot."),
        # Past the id column's range (bigint): a miss, not a database error.
        ("9" * 30, f"There is no node {'9' * 30} in this snapshot."),
        ("abc", "“abc” is not a node: ?node= takes a node&#x27;s id, a whole number."),
        # str.isdigit() takes these; int() refuses the first and reads the second as 12.
        ("²", "“²” is not a node"),
        ("١٢", "“١٢” is not a node"),
        ("-3", "“-3” is not a node"),
        ("", "The link names no node (?node= is empty)"),
        ("<b>x</b>", "“&lt;b&gt;x&lt;/b&gt;” is not a node"),
    ],
)
def test_a_link_to_no_node_of_the_snapshot_says_so_on_its_page(cast, offline_agent, node, notice):
    snapshot = import_snapshot(offline_agent, snapshot_doc(token_ids=True))
    response = cast.client_for(cast.operator).get(reverse("snapshot_detail", args=[snapshot.pk]), {"node": node})
    # The snapshot exists, the node does not: a 404, but the snapshot's own
    # page (not "Nothing is at /snapshots/<id>/"), with the notice above it.
    assert response.status_code == 404
    html = response.content.decode()
    problem = re.search(r'<div class="notice bad" id="node-problem" role="alert">(.*?)</div>', html, re.S).group(1)
    assert notice in problem and "The snapshot is below." in problem
    assert "<b>x" not in html
    assert html.index('id="node-problem"') < html.index("<h1>Snapshot of")
    assert "Desk 14 at Platform; the code is 4471#." in html and "Start a run" in html
    assert "Nothing is at" not in html


def test_a_link_to_another_snapshots_node_is_no_node_of_this_one(cast, offline_agent):
    snapshot = import_snapshot(offline_agent, snapshot_doc(token_ids=True))
    other = import_snapshot(offline_agent, snapshot_doc(token_ids=True, taken_at="2026-11-21T09:00:00Z"))
    elsewhere = Node.objects.filter(snapshot=other).first()
    response = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk]), {"node": elsewhere.pk})
    assert response.status_code == 404
    assert f"There is no node {elsewhere.pk} in this snapshot." in response.content.decode()


def test_a_link_to_a_node_of_a_missing_snapshot_is_a_plain_404(cast, offline_agent):
    response = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[999]), {"node": "1"})
    assert response.status_code == 404 and "node-problem" not in response.content.decode()


def test_it_lists_runs_and_candidates_of_the_snapshot(cast, offline_agent):
    snapshot = import_snapshot(offline_agent, snapshot_doc(token_ids=True))
    full = ScoringRun.objects.create(agent=offline_agent, snapshot=snapshot, mode=Mode.FULL,
                                     status=RunStatus.SUCCEEDED)
    one = ScoringRun.objects.create(agent=offline_agent, snapshot=snapshot, mode=Mode.MEMORY,
                                    params={"key": "people/alice"})
    estimate = ScoringRun.objects.create(agent=offline_agent, snapshot=snapshot, mode=Mode.ESTIMATE,
                                         params={"ablations": 16}, status=RunStatus.SUCCEEDED)
    groups = ScoringRun.objects.create(agent=offline_agent, snapshot=snapshot, mode=Mode.GROUPS)
    finetune = ScoringRun.objects.create(agent=offline_agent, snapshot=snapshot, mode=Mode.FINETUNE)
    response = Node.objects.get(snapshot=snapshot, section="conversation", index=2)
    Candidate.objects.create(agent=offline_agent, snapshot=snapshot, response=response,
                             response_key="2026-11-20T11:58:09Z", divergence=3.2, response_text=response.text)
    html = cast.client_for(cast.viewer).get(reverse("snapshot_detail", args=[snapshot.pk])).content.decode()
    assert reverse("run_detail", args=[full.pk]) in html and reverse("run_detail", args=[one.pk]) in html
    assert reverse("heatmap", args=[full.pk]) in html
    # Every mode with a heatmap links it (a fine-tune run has none); an estimate's is labelled as one.
    assert reverse("heatmap", args=[one.pk]) in html and reverse("heatmap", args=[groups.pk]) in html
    assert reverse("heatmap", args=[finetune.pk]) not in html
    assert f'<a href="{reverse("heatmap", args=[estimate.pk])}">heatmap</a> <span class="badge estimate"' in html
    assert "Candidates (1)" in html


def test_it_shows_the_start_form_to_operators_only(cast, offline_agent):
    snapshot = import_snapshot(offline_agent, snapshot_doc(token_ids=True))
    url = reverse("snapshot_detail", args=[snapshot.pk])
    action = f'action="{reverse("run_start", args=[snapshot.pk])}"'
    html = cast.client_for(cast.operator).get(url).content.decode()
    assert action in html
    for name in ("mode", "key", "count", "min_divergence", "alternates", "max_age", "response_window"):
        assert f'name="{name}"' in html
    assert '<option value="identity/core">' in html and '<option value="people/alice">' in html
    assert action not in cast.client_for(cast.viewer).get(url).content.decode()


def test_it_refuses_the_snapshot_to_an_outsider(cast, offline_agent):
    snapshot = import_snapshot(offline_agent, snapshot_doc(token_ids=True))
    assert cast.client_for(cast.outsider).get(reverse("snapshot_detail", args=[snapshot.pk])).status_code == 403


# --- StartRunForm -----------------------------------------------------------------

@pytest.fixture
def snapshot(offline_agent):
    offline_agent.finetune_count = 120
    offline_agent.incremental_response_window = 25
    offline_agent.incremental_batch = 7
    offline_agent.save()
    return import_snapshot(offline_agent, snapshot_doc(token_ids=True))


def test_start_form_offers_the_snapshot_keys_in_context_order(snapshot):
    param_forms = {mode.name: form for mode, form in StartRunForm(snapshot=snapshot).param_forms()}
    assert [value for value, _ in param_forms["memory"].fields["key"].widget.choices] == [
        "", "identity/core", "identity/sam", "places/office", "people/alice",
    ]


@pytest.mark.parametrize(
    "data, params",
    [
        ({"mode": "full", "key": "people/alice", "count": "5"}, {}),
        ({"mode": "memory", "key": "people/alice", "count": "5"}, {"key": "people/alice"}),
        ({"mode": "finetune", "count": "50", "min_divergence": "2.5", "alternates": "on"},
         {"count": 50, "min_divergence": 2.5, "alternates": True}),
        ({"mode": "finetune"}, {"count": 120, "min_divergence": 1.0, "alternates": False}),
        ({"mode": "incremental", "max_age": "60"}, {"max_age": 60, "response_window": 25, "limit": 7}),
    ],
)
def test_start_form_keeps_only_the_params_of_its_mode(snapshot, data, params):
    form = StartRunForm(data, snapshot=snapshot)
    assert form.is_valid(), form.errors
    assert form.params == params


@pytest.mark.parametrize(
    "data, field",
    [
        ({"mode": "memory"}, "key"),
        ({"mode": "finetune", "count": "0"}, "count"),
        ({"mode": "finetune", "min_divergence": "-1"}, "min_divergence"),
        ({"mode": "incremental", "response_window": "0"}, "response_window"),
        ({"mode": "sideways"}, "mode"),
    ],
)
def test_start_form_rejects_bad_values(snapshot, data, field):
    form = StartRunForm(data, snapshot=snapshot)
    assert not form.is_valid()
    assert field in form.errors


def test_it_refuses_to_start_on_a_key_the_snapshot_lacks(cast, snapshot):
    # The form takes any key; planning the run finds it missing.
    client = cast.client_for(cast.operator)
    response = client.post(reverse("run_start", args=[snapshot.pk]),
                           {"mode": "memory", "key": "not/in/this/snapshot"})
    assert ('<a href="#id_key">Memory key</a>: no memory with key &#x27;not/in/this/snapshot&#x27;'
            in response.text)
    assert not ScoringRun.objects.exists()
