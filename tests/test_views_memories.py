"""Memories: the list with importance and flags, and one memory's page."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from scoring.models import Agent, Memory, MemoryScore, Node, ScoringRun
from scoring.models.runs import RunStatus
from tests.matrix_data import FAILED, UNAFFECTED, matrix_run

XSS = "<script>alert(1)</script>"
N = 12  # responses per run: enough for "never matters" (at least 10)


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")


@pytest.fixture
def run(agent):
    return matrix_run(
        agent,
        [
            [2.0, 0.5] + [0.0] * (N - 2),          # useful: sum 2.5, max 2.0
            [0.005, -0.004] + [0.0] * (N - 2),     # never matters (all ≤ 0.01)
            [1.0, -2.5] + [0.0] * (N - 2),         # harmful: net -1.5
            [-0.06] * N,                            # harmful: net -0.72
            [0.3] + [FAILED] * (N - 1),             # one scored response: too few to judge
            [FAILED] * N,                           # every call failed: unknown, not zero
            [3.0, -2.5] + [0.0] * (N - 2),         # useful overall despite one response (net +0.5)
            # Its call failed; the responses before it are exactly 0 all the same: still unknown.
            [UNAFFECTED] * (N - 2) + [FAILED] * 2,
        ],
        keys=["useful", "never", "harmful", "netneg", f"xss/{XSS}", "broken", "mixed", "late"],
        memory_texts=["u", "n", "h", "nn", f"text {XSS}", "b", "m", "l"],
        responses=[f"answer {j} {XSS}" for j in range(N)],
        status=RunStatus.PARTIAL,
    )


def _keys_in_order(html, keys):
    positions = {k: html.find(f">{k}</a>") for k in keys}
    assert all(p >= 0 for p in positions.values()), positions
    return sorted(keys, key=positions.get)


def test_it_lists_memories_by_importance_with_flags(cast, run, agent):
    page = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk]))
    assert page.status_code == 200
    html = page.text
    # Ties (both 0) keep key order.
    assert _keys_in_order(html, ["useful", "harmful", "never", "netneg"]) == ["useful", "harmful", "netneg", "never"]
    rows = {k: html[html.find(f">{k}</a>"):].split("</tr>")[0] for k in ["useful", "never", "harmful", "netneg"]}
    assert "never matters" in rows["never"] and "harmful" not in rows["never"]
    assert ">harmful</span>" in rows["harmful"] and "never matters" not in rows["harmful"]
    assert ">harmful</span>" in rows["netneg"]
    assert "never matters" not in rows["useful"] and ">harmful</span>" not in rows["useful"]
    # One response predicted better without it does not make a useful memory harmful.
    mixed = html[html.find(">mixed</a>"):].split("</tr>")[0]
    assert ">harmful</span>" not in mixed
    assert "2.500" in rows["useful"] and "2.000" in rows["useful"]
    # One scored response is not enough evidence to say it never matters.
    xss_row = html[html.find("xss/&lt;script&gt;"):].split("</tr>")[0]
    assert "never matters" not in xss_row and "11 failed" in xss_row
    # A memory whose every cell failed shows "failed", never an importance of 0.
    broken = html[html.find(">broken</a>"):].split("</tr>")[0]
    assert broken.count(">failed</span>") == 2 and "0.000" not in broken and "never matters" not in broken
    assert XSS not in html
    assert f'href="{reverse("heatmap", args=[run.pk])}"' in html


def test_it_filters_by_flag(cast, run, agent):
    client = cast.client_for(cast.viewer)
    never = client.get(reverse("memory_list", args=[agent.pk]), {"flag": "never"}).text
    assert ">never</a>" in never and ">useful</a>" not in never and ">harmful</a>" not in never
    harmful = client.get(reverse("memory_list", args=[agent.pk]), {"flag": "harmful"}).text
    assert ">harmful</a>" in harmful and ">netneg</a>" in harmful and ">never</a>" not in harmful


def test_it_searches_keys_and_texts(cast, run, agent):
    client = cast.client_for(cast.viewer)
    html = client.get(reverse("memory_list", args=[agent.pk]), {"q": "  USE "}).text
    assert ">useful</a>" in html and ">never</a>" not in html
    assert 'value="USE"' in html
    by_text = client.get(reverse("memory_list", args=[agent.pk]), {"q": "nn"}).text
    assert ">netneg</a>" in by_text and ">useful</a>" not in by_text
    nothing = client.get(reverse("memory_list", args=[agent.pk]), {"q": "zzz", "flag": "never"}).text
    assert "No memories match" in nothing


def test_it_lists_nothing_for_an_unknown_flag(cast, run, agent):
    html = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk]), {"flag": "bogus"}).text
    assert ">useful</a>" not in html and ">never</a>" not in html
    # ... and says why, rather than seem filtered (tests/test_filter_problems.py has the rule).
    assert "Show “bogus”: not one of the choices." in html
    html = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk]), {"flag": "harmful"}).text
    assert 'id="filter-errors"' not in html


def test_its_sort_links_keep_the_filters_and_leave_the_page(cast, run, agent):
    html = cast.client_for(cast.viewer).get(
        reverse("memory_list", args=[agent.pk]), {"flag": "harmful", "q": "h", "page": "1", "sort": "key"}
    ).text
    # key is the current sort (ascending): its link flips it; others start descending.
    assert 'href="?flag=harmful&amp;q=h&amp;sort=-key"' in html
    assert 'href="?flag=harmful&amp;q=h&amp;sort=-importance_max"' in html
    assert "page=" not in html


def test_it_sorts_by_key_weight_and_last_scored(cast, run, agent):
    memories = {m.key: m for m in run.memories}
    memories["never"].weight, memories["never"].last_scored = 3.0, timezone.now()
    memories["never"].save()
    memories["netneg"].weight = 1.0
    memories["netneg"].save()
    client = cast.client_for(cast.viewer)
    keys = ["useful", "never", "harmful", "netneg"]

    html = client.get(reverse("memory_list", args=[agent.pk]), {"sort": "key"}).text
    assert _keys_in_order(html, keys) == ["harmful", "netneg", "never", "useful"]
    html = client.get(reverse("memory_list", args=[agent.pk]), {"sort": "-key"}).text
    assert _keys_in_order(html, keys) == ["useful", "never", "netneg", "harmful"]
    html = client.get(reverse("memory_list", args=[agent.pk]), {"sort": "-weight"}).text
    # Never-scored memories go last, by key.
    assert _keys_in_order(html, keys) == ["never", "netneg", "harmful", "useful"]
    html = client.get(reverse("memory_list", args=[agent.pk]), {"sort": "-importance_max"}).text
    assert _keys_in_order(html, keys) == ["useful", "harmful", "netneg", "never"]
    assert 'aria-sort="descending"' in html


def test_it_uses_the_latest_full_run(cast, run, agent):
    newer = matrix_run(agent, [[0.0] * N, [5.0] * N, [0.0] * N], keys=["useful", "never", "harmful"])
    html = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk])).text
    assert f'href="{reverse("run_detail", args=[newer.pk])}"' in html
    assert _keys_in_order(html, ["useful", "never", "harmful"])[0] == "never"


def test_it_says_what_to_do_without_memories(cast, agent):
    html = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk])).text
    assert "No memories yet" in html
    assert "importance is unknown" in html


def test_it_shows_one_memory(cast, run):
    memory = run.memories[4]
    MemoryScore.objects.create(memory=memory, run=run, score=0.3, weight=0.3, responses=1)
    MemoryScore.objects.create(memory=memory, score=1.0, weight=0.51, responses=12)
    page = cast.client_for(cast.viewer).get(reverse("memory_detail", args=[memory.pk]))
    assert page.status_code == 200
    html = page.text
    assert XSS not in html
    assert "text &lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Where it appears, with a link to the snapshot.
    assert f'href="{reverse("snapshot_detail", args=[run.snapshot_id])}"' in html
    # The response it matters for, with a link to compare the texts.
    assert reverse("heatmap_cell", args=[run.pk, memory.pk, run.response_ids[0]]) in html
    assert "answer 0 &lt;script&gt;" in html
    # Its history for charts.js, as JSON that cannot close the script element.
    assert '<script id="memory-history" type="application/json">' in html
    assert '"weight": 0.51' in html
    assert "memscore/charts.js" in html


def test_it_links_each_appearance_and_response_to_its_node_in_the_snapshot(cast, run):
    memory = run.memories[0]
    node = Node.objects.get(snapshot=run.snapshot, memory=memory)
    client = cast.client_for(cast.viewer)
    html = client.get(reverse("memory_detail", args=[memory.pk])).text
    snapshot_url = reverse("snapshot_detail", args=[run.snapshot_id])
    # Where it appears: the position links to the node (the snapshot page
    # opens its fold for it), not only to the snapshot's first page.
    section = html[html.index("<h2>Where it appears</h2>"):]
    assert re.match(r'<h2>Where it appears</h2>\s*<div class="stack-box"><table class="stack" id="memory-appearances">',
                    section)
    row = section[section.index("<tbody>"):section.index("</tbody>")]
    assert f'<a href="{snapshot_url}?node={node.pk}" title="This memory in the snapshot">identity[0]</a>' in row
    # Its text has a line of its own where the table is narrow (a stack-box's table.stack).
    assert '<td class="line muted small">u</td>' in row
    # The responses it matters for link to theirs.
    for response_id in run.response_ids[:2]:
        assert f'href="{snapshot_url}?node={response_id}" title="This response in the snapshot">response #' in html
    response = client.get(f"{snapshot_url}?node={node.pk}")
    assert response["Location"] == f"{snapshot_url}?page=1#node-{node.pk}"


def test_it_shows_where_a_harmful_memory_hurts(cast, run):
    harmful = run.memories[2]
    html = cast.client_for(cast.viewer).get(reverse("memory_detail", args=[harmful.pk])).text
    assert ">harmful</span>" in html
    assert "Responses predicted better without it" in html
    assert "-2.500" in html
    assert reverse("heatmap_cell", args=[run.pk, harmful.pk, run.response_ids[1]]) in html
    # The cell is harmful by itself too (below -0.5 nats): marked so.
    assert 'nats better without it: harmful">-2.500</span>' in html


def test_it_lists_cells_slightly_better_without_it_unmarked(cast, run):
    netneg = run.memories[3]
    html = cast.client_for(cast.viewer).get(reverse("memory_detail", args=[netneg.pk])).text
    # Harmful on balance (12 × -0.06), but no one cell is past the threshold.
    assert ">harmful</span>" in html and "more than 0.5 nats better without it on balance" in html
    assert "Responses predicted better without it" in html
    # Unmarked: no harmful badge on it (the "delta" and "nats" around it show only when stacked on a phone).
    assert '<span class="stacked-only muted">delta </span>-0.060<span class="stacked-only muted"> nats</span>' in html
    assert 'harmful">-0.060' not in html


def test_it_explains_a_memory_never_scored(cast, agent):
    memory = Memory.objects.create(agent=agent, key="lonely", text="alone")
    html = cast.client_for(cast.viewer).get(reverse("memory_detail", args=[memory.pk])).text
    assert "No score history yet" in html
    assert "No full-matrix run has finished" in html


def test_an_outsider_gets_403(cast, run, agent):
    client = cast.client_for(cast.outsider)
    assert client.get(reverse("memory_list", args=[agent.pk])).status_code == 403
    assert client.get(reverse("memory_detail", args=[run.memories[0].pk])).status_code == 403


def test_it_404s_unknown_ones(cast, db):
    client = cast.client_for(cast.viewer)
    assert client.get(reverse("memory_list", args=[999])).status_code == 404
    assert client.get(reverse("memory_detail", args=[999])).status_code == 404


def test_it_lists_memories_from_the_database_when_the_cache_is_down(cast, run, agent, settings):
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }}
    response = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk]))
    assert response.status_code == 200
    assert response.context["counts"]["harmful"] >= 0
    assert response.context["run"] == run


def _page_keys(client, agent, **params):
    response = client.get(reverse("memory_list", args=[agent.pk]), params)
    return [m.key for m in response.context["page"].object_list]


def test_it_reads_one_page_of_memories_whatever_their_number(cast, agent):
    # 250 memories, 3 of them in the run: the page's queries do not grow with
    # the memories (was one query per memory; 33k memories took 15 s).
    Memory.objects.bulk_create([Memory(agent=agent, key=f"extra/{i:03d}", text="t") for i in range(247)])
    matrix_run(agent, [[2.0] * N, [0.5] * N, [FAILED] * N], keys=["b-top", "a-second", "c-failed"])
    client = cast.client_for(cast.viewer)
    client.get(reverse("memory_list", args=[agent.pk]))  # the run's stats, cached from then on
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("memory_list", args=[agent.pk]), {"sort": "key"})
    Memory.objects.bulk_create([Memory(agent=agent, key=f"more/{i:03d}", text="t") for i in range(500)])
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("memory_list", args=[agent.pk]), {"sort": "key"})
    assert len(many) == len(few) < 20
    assert len(response.context["page"].object_list) == 100


def test_it_pages_the_importance_order_then_the_rest_by_key(cast, agent):
    Memory.objects.bulk_create([Memory(agent=agent, key=f"Extra/{i:03d}", text="t") for i in range(150)])
    matrix_run(agent, [[2.0] * N, [0.5] * N, [FAILED] * N], keys=["b-top", "a-second", "c-failed"])
    client = cast.client_for(cast.viewer)
    first = _page_keys(client, agent)
    second = _page_keys(client, agent, page=2)
    # Scored first by importance; then the rest (the failed one included) by key, any case.
    assert first[:2] == ["b-top", "a-second"]
    rest = sorted(["c-failed", *(f"Extra/{i:03d}" for i in range(150))], key=str.lower)
    assert first[2:] + second == rest
    ascending = _page_keys(client, agent, sort="importance_max")
    assert ascending[:2] == ["a-second", "b-top"]
    last = _page_keys(client, agent, sort="importance_max", page=2)
    assert last[-1] == "Extra/149" and len(first) + len(second) == 153 == len(ascending) + len(last)


def test_it_sorts_weights_in_sql_with_unscored_last_by_key(cast, agent):
    now = timezone.now()
    Memory.objects.bulk_create([
        Memory(agent=agent, key="b", weight=1.0, last_scored=now),
        Memory(agent=agent, key="A", weight=None),
        Memory(agent=agent, key="c", weight=2.0, last_scored=now - timezone.timedelta(hours=1)),
        Memory(agent=agent, key="a2", weight=None),
    ])
    client = cast.client_for(cast.viewer)
    assert _page_keys(client, agent, sort="-weight") == ["c", "b", "A", "a2"]
    assert _page_keys(client, agent, sort="weight") == ["b", "c", "A", "a2"]
    assert _page_keys(client, agent, sort="-last_scored") == ["b", "c", "A", "a2"]
    assert _page_keys(client, agent, sort="-key") == ["c", "b", "a2", "A"]


def test_a_memory_whose_cells_failed_is_unknown_not_one_no_response_depends_on(cast, run, agent):
    client = cast.client_for(cast.viewer)
    for key in ("broken", "late"):
        memory = Memory.objects.get(agent=agent, key=key)
        html = client.get(reverse("memory_detail", args=[memory.pk])).text
        assert 'id="memory-cells-failed"' in html and "unknown (not zero)" in html, key
        assert "never matters" not in html and "No response depends on it" not in html, key
    # Some failed, some scored: what was scored is listed, the failed ones counted apart.
    partly = Memory.objects.get(agent=agent, key=f"xss/{XSS}")
    html = client.get(reverse("memory_detail", args=[partly.pk])).text
    assert f"{N - 1} of its cells in this run failed" in html


def test_a_failed_memory_with_unaffected_cells_is_not_listed_as_zero_or_never_mattering(cast, run, agent):
    # Its cells before the memory are exactly 0 whatever its call did: they
    # say nothing of the rest, which failed.
    page = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk]))
    late = next(m for m in page.context["page"].object_list if m.key == "late")
    assert late.stats["scored"] == 0 and late.stats["importance_sum"] is None
    assert late.flags == [] and late.stats["failed_cells"] == 2


def test_a_latest_run_with_failed_memories_says_so_and_points_to_the_last_complete_one(cast, run, agent):
    """Walkthrough: a newer run with failed calls took over the page and its
    failed memories read as unknown, with nothing pointing to the run before
    that had scored them all."""
    page = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk])).text
    assert "2 unknown" in page and "Its calls for 2 memories failed" in page  # broken and late (xss has one scored)
    assert "the latest run that scored every memory" not in page  # there is none before it
    older = matrix_run(agent, [[1.0] * N] * 2, keys=["useful", "never"])
    ScoringRun.objects.filter(pk=older.pk).update(finished_at=run.finished_at - timezone.timedelta(hours=1))
    page = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk])).text
    assert f'the latest run that scored every memory is <a href="{reverse("run_detail", args=[older.pk])}">' in page


def test_numbers_measured_before_the_latest_training_say_so(cast, run, agent):
    """Walkthrough: after training, the memories page showed weights scored
    before it beside no word of it (the compare page said so; these did not)."""
    from scoring.models import TrainJob

    hour = timezone.timedelta(hours=1)
    ScoringRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - 3 * hour)
    memories = Memory.objects.filter(agent=agent).order_by("pk")
    memories.filter(pk__in=[m.pk for m in memories[:2]]).update(weight=1.0, last_scored=timezone.now() - 2 * hour)
    client = cast.client_for(cast.viewer)
    assert 'id="trained-since"' not in client.get(reverse("memory_list", args=[agent.pk])).text

    job = TrainJob.objects.create(agent=agent, status=TrainJob.Status.SUCCEEDED, server_job_id="job-1",
                                  accepted_at=timezone.now() - hour, finished_at=timezone.now() - hour)
    page = client.get(reverse("memory_list", args=[agent.pk])).text
    note = page.split('id="trained-since">')[1].split("</p>")[0]
    assert str(job) in note and f"Importance comes from run #{run.pk}, which started before it." in note
    assert "2 weights were last scored before it" in note
    # To the form on the latest snapshot's page (starting a run is a POST there).
    assert f'<a href="{reverse("snapshot_detail", args=[run.snapshot_id])}#start-run">Start a full run</a>' in note
    assert client.get(reverse("snapshot_detail", args=[run.snapshot_id])).status_code == 200

    one = client.get(reverse("memory_detail", args=[memories[0].pk])).text
    assert "The weight was last scored before it" in one.split('id="trained-since">')[1]

    # Measured again after the training: nothing to say.
    ScoringRun.objects.filter(pk=run.pk).update(started_at=timezone.now())
    Memory.objects.filter(agent=agent).update(last_scored=timezone.now())
    assert 'id="trained-since"' not in client.get(reverse("memory_list", args=[agent.pk])).text
