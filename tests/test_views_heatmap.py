"""The heatmap: page, packed JSON, CSV, cell fragment, and drawing in a real browser."""

import csv
import gzip
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scoring.models import Agent, CellScore
from scoring.models.runs import RunStatus
from tests.matrix_data import FAILED, MISSING, matrix_run

XSS = "<script>alert(1)</script>"


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")


@pytest.fixture
def run(agent):
    return matrix_run(
        agent,
        [[1.2346, 0.005, FAILED], [-0.7, MISSING, 0.0]],
        keys=["people/alice", f"evil/{XSS}"],
        memory_texts=["Alice runs the sync.", f"Memory {XSS} text"],
        responses=["First answer " + "x" * 200, f"Second {XSS} answer", "Third"],
        status=RunStatus.PARTIAL,
    )


def test_it_renders_the_page_shell(cast, run):
    page = cast.client_for(cast.viewer).get(reverse("heatmap", args=[run.pk]))
    assert page.status_code == 200
    assert 'id="heatmap-canvas"' in page.text
    assert f'data-url="{reverse("heatmap_data", args=[run.pk])}"' in page.text
    assert f'data-cell-base="/runs/{run.pk}/cell/"' in page.text
    assert reverse("heatmap_csv", args=[run.pk]) in page.text
    assert "<noscript>" in page.text
    assert "memscore/heatmap.js" in page.text
    # One definition of harmful: scoring.maths.HARMFUL_NATS, as on the memories pages.
    assert "harmful: predicted more than 0.5 nats better without it" in page.text
    # Keys and texts travel in the JSON only, never into the HTML.
    assert XSS not in page.text


def test_it_packs_the_cells_as_json(cast, run):
    response = cast.client_for(cast.viewer).get(reverse("heatmap_data", args=[run.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert data["rows"] == 2 and data["cols"] == 3
    assert data["keys"] == ["people/alice", f"evil/{XSS}"]
    assert data["memory_ids"] == [m.pk for m in run.memories]
    assert data["response_ids"] == run.response_ids
    assert data["response_number"] == [1, 2, 3] and data["response_index"] == [1, 3, 5]
    assert data["snippets"][0] == "First answer " + "x" * 66 + "…"
    assert len(data["snippets"][0]) == 80
    assert data["snippets"][1] == f"Second {XSS} answer"
    assert data["unit"] == 0.001 and data["zero"] == 0.01 and data["harm"] == 0.5
    # Signed thousandths, row-major; a failed cell is null and a zero is 0.
    assert data["values"] == [1235, 5, None, -700, None, 0]
    # The cell not scored yet is null too, but listed as missing, not failed.
    assert data["missing"] == [[4, 1]]
    assert data["status"] == "partial" and data["active"] is False


def test_it_serves_a_finished_runs_payload_from_the_cache(cast, run):
    client = cast.client_for(cast.viewer)
    first = client.get(reverse("heatmap_data", args=[run.pk])).content
    table = CellScore._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        second = client.get(reverse("heatmap_data", args=[run.pk])).content
    assert second == first
    assert not [q for q in queries.captured_queries if table in q["sql"]]


def test_it_sends_gzip_and_answers_304_when_unchanged(cast, run):
    client = cast.client_for(cast.viewer)
    url = reverse("heatmap_data", args=[run.pk])
    response = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert response["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(response.content))["values"] == [1235, 5, None, -700, None, 0]
    assert response["ETag"].startswith('"heatmap-v8-')
    again = client.get(url, HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again.content == b""
    for answer in (response, again):
        assert answer["ETag"] == response["ETag"]
        assert answer["Cache-Control"] == "private, no-cache"
        assert answer["Vary"] == "Accept-Encoding, Cookie"
    plain = client.get(url, HTTP_IF_NONE_MATCH='"something-else"')
    assert plain.status_code == 200 and "Content-Encoding" not in plain
    assert plain.json()["values"] == [1235, 5, None, -700, None, 0]


def test_it_answers_403_before_304(cast, run):
    etag = cast.client_for(cast.viewer).get(reverse("heatmap_data", args=[run.pk]))["ETag"]
    response = cast.client_for(cast.outsider).get(reverse("heatmap_data", args=[run.pk]), HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 403


def test_it_does_not_cache_an_active_run(cast, agent):
    run = matrix_run(agent, [[0.5, MISSING]], status=RunStatus.RUNNING, finished=False)
    client = cast.client_for(cast.viewer)
    first = client.get(reverse("heatmap_data", args=[run.pk]))
    assert first.json()["values"] == [500, None]
    assert first["Cache-Control"] == "no-store" and "ETag" not in first
    CellScore.objects.create(run=run, memory=run.memories[0], response_id=run.response_ids[1], delta=2.0)
    data = client.get(reverse("heatmap_data", args=[run.pk])).json()
    assert data["values"] == [500, 2000]
    assert data["missing"] == [] and data["active"] is True
    page = client.get(reverse("heatmap", args=[run.pk])).text
    assert "not scored yet" in page and "not scored in this run" not in page


def test_it_downloads_every_cell_as_csv(cast, run):
    response = cast.client_for(cast.viewer).get(reverse("heatmap_csv", args=[run.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "memory_id", "memory_key", "response_id", "response_number", "response_index", "delta", "importance", "state",
        "kind",
    ]
    assert {r[8] for r in rows[1:]} == {"exact"}
    by_cell = {(r[1], r[3]): r[4:8] for r in rows[1:]}
    assert len(by_cell) == 6
    # Response #2 is conversation entry 3: both numbers, one meaning each.
    assert by_cell[("people/alice", "1")] == ["1", "1.2346", "1.2346", "scored"]
    # At or below the threshold the importance is zero; the delta stays as measured.
    assert by_cell[("people/alice", "2")] == ["3", "0.005", "0.0", "scored"]
    assert by_cell[("people/alice", "3")] == ["5", "", "", "failed"]
    assert by_cell[(f"evil/{XSS}", "1")] == ["1", "-0.7", "0.0", "scored"]
    assert by_cell[(f"evil/{XSS}", "2")] == ["3", "", "", "missing"]


def test_it_defuses_spreadsheet_formulas_in_the_csv(cast, agent):
    run = matrix_run(agent, [[1.0]], keys=["=HYPERLINK(\"http://x\")"])
    response = cast.client_for(cast.viewer).get(reverse("heatmap_csv", args=[run.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][1] == "'=HYPERLINK(\"http://x\")"


def test_it_returns_the_cell_fragment_to_htmx_escaped(cast, run):
    evil = run.memories[1]
    url = reverse("heatmap_cell", args=[run.pk, evil.pk, run.response_ids[1]])
    fragment = cast.client_for(cast.viewer).get(url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "topbar" not in fragment.text
    assert fragment.text.lstrip().startswith('<div class="card" id="cell">')
    assert XSS not in fragment.text
    assert "Memory &lt;script&gt;alert(1)&lt;/script&gt; text" in fragment.text
    assert "Second &lt;script&gt;alert(1)&lt;/script&gt; answer" in fragment.text
    # The run has ended: a cell it did not score never will be.
    assert "never scored" in fragment.text and "not scored yet" not in fragment.text


def test_it_renders_the_cell_as_a_page_without_htmx(cast, run):
    alice = run.memories[0]
    page = cast.client_for(cast.viewer).get(reverse("heatmap_cell", args=[run.pk, alice.pk, run.response_ids[0]]))
    assert page.status_code == 200
    assert "topbar" in page.text
    assert "importance 1.235 nats" in page.text
    assert "Alice runs the sync." in page.text


def test_it_says_a_failed_cell_failed_and_a_harmful_one_harms(cast, run):
    client = cast.client_for(cast.viewer)
    alice, evil = run.memories
    failed = client.get(reverse("heatmap_cell", args=[run.pk, alice.pk, run.response_ids[2]]), HTTP_HX_REQUEST="true")
    assert "failed" in failed.text and "not zero" in failed.text
    harmful = client.get(reverse("heatmap_cell", args=[run.pk, evil.pk, run.response_ids[0]]), HTTP_HX_REQUEST="true")
    # -0.7 nats: past maths.HARMFUL_NATS, the one threshold for cells and memories.
    assert ">harmful<" in harmful.text and "-0.700" in harmful.text


def test_it_says_a_slightly_negative_cell_is_not_harmful(cast, agent):
    run = matrix_run(agent, [[-0.3, -0.005]], keys=["mild"])
    client = cast.client_for(cast.viewer)
    mild = client.get(reverse("heatmap_cell", args=[run.pk, run.memories[0].pk, run.response_ids[0]]))
    assert "slightly better without it" in mild.text and "-0.300" in mild.text
    assert ">harmful<" not in mild.text and "only below −0.5" in mild.text
    noise = client.get(reverse("heatmap_cell", args=[run.pk, run.memories[0].pk, run.response_ids[1]]))
    assert "no effect" in noise.text


def test_it_404s_a_cell_outside_the_run(cast, run, agent):
    other_agent = Agent.objects.create(name="other", base_url="http://127.0.0.1:9/v1", model="m")
    other = matrix_run(other_agent, [[1.0]])
    client = cast.client_for(cast.viewer)
    foreign_memory = reverse("heatmap_cell", args=[run.pk, other.memories[0].pk, run.response_ids[0]])
    foreign_response = reverse("heatmap_cell", args=[run.pk, run.memories[0].pk, other.response_ids[0]])
    assert client.get(foreign_memory).status_code == 404
    assert client.get(foreign_response).status_code == 404


def test_an_outsider_gets_403(cast, run):
    client = cast.client_for(cast.outsider)
    for name, args in [
        ("heatmap", [run.pk]), ("heatmap_data", [run.pk]), ("heatmap_csv", [run.pk]),
        ("heatmap_cell", [run.pk, run.memories[0].pk, run.response_ids[0]]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 403, name


def test_it_numbers_responses_one_way_on_the_cell_page(cast, run):
    # Issue 12: the second response (conversation entry 3) was "response 3" here
    # and "Response 3" in the tooltip; it is response #2 everywhere.
    alice = run.memories[0]
    url = reverse("heatmap_cell", args=[run.pk, alice.pk, run.response_ids[1]])
    page = cast.client_for(cast.viewer).get(url)
    assert "× response #2 " in page.text and "(conversation entry 3)" in page.text
    assert "Response #2 " in page.text
    assert "response 3" not in page.text.lower().replace("conversation entry 3", "")


def test_the_page_links_the_glossary_and_both_downloads_and_is_focusable(cast, run):
    page = cast.client_for(cast.viewer).get(reverse("heatmap", args=[run.pk]))
    assert reverse("glossary") in page.text
    assert reverse("heatmap_cells_json", args=[run.pk]) in page.text
    assert 'tabindex="0"' in page.text and 'id="heatmap-rows"' in page.text
    assert "memscore/heatmap_figure.js" in page.text


@pytest.fixture
def cache_down(settings):
    """The shared cache is Redis at a port nothing listens on."""
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }}


def test_it_serves_a_finished_runs_payload_from_the_database_when_the_cache_is_down(cast, run, cache_down):
    client = cast.client_for(cast.viewer)
    response = client.get(reverse("heatmap_data", args=[run.pk]), HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    data = json.loads(gzip.decompress(response.content))
    assert data["rows"] == 2 and data["cols"] == 3 and data["values"][0] == 1235
    assert response["ETag"]
    plain = client.get(reverse("heatmap_data", args=[run.pk]))
    assert plain.status_code == 200 and json.loads(plain.content) == data
    # The page and the CSV read no cache either way.
    assert client.get(reverse("heatmap", args=[run.pk])).status_code == 200


def test_a_one_memory_run_says_memory_not_memories(cast, agent):
    run = matrix_run(agent, [[0.5]], keys=["only"])
    page = cast.client_for(cast.viewer).get(reverse("heatmap", args=[run.pk])).text
    assert '<span id="heatmap-size">1 memory × 1 response</span>' in page
