"""Long pages read on a 390 px phone, in Chromium: the candidate page's
decision tables wrap a comment between its words (squeezed into a column, a
comment broke inside them), and a demo-sized snapshot page folds its
conversation after the first nodes (shown whole, it was 20,500 px tall), with
a link to a folded node opening the fold (the memory's page and a heatmap
cell link to theirs), and a Hide button at its end."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

import scoring
from scoring.importing import import_snapshot
from scoring.models import Activity, Agent, Candidate, CellScore, Memory, Node, Review, ScoringRun
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
# Two columns (.split) from 800 px: the decisions' half is as narrow as a phone.
SMALL_LAPTOP = {"width": 1000, "height": 800}
DESKTOP = {"width": 1280, "height": 900}

# Words within a comment's cell that Range rects show split over two lines.
# A run longer than 30 characters (a URL) may break: it cannot fit a line.
SPLIT_WORDS = """(cell) => {
  const split = [];
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    for (const m of text.data.matchAll(/\\S+/g)) {
      if (m[0].length > 30) continue;
      const range = document.createRange();
      range.setStart(text, m.index);
      range.setEnd(text, m.index + m[0].length);
      if (range.getClientRects().length > 1) split.push(m[0]);
    }
  }
  return split;
}"""


@pytest.fixture
def demo_snapshot(transactional_db):
    """The demo's snapshot (139 conversation nodes), with made-up token ids so
    no server is needed."""
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m", required_approvals=2)
    doc = json.loads((Path(scoring.__file__).parent / "demo" / "poc_snapshot.json").read_text())
    for section in ("system", "identity", "journal", "conversation"):
        for node in doc[section]:
            node["token_ids"] = [0, 10, 11, 12, 1]
    return import_snapshot(agent, doc)


COMMENTS = [
    "The assistant recalls the oat flat white correctly and the escalation contact matches the on-call "
    "memory; approving because the memory clearly improves the answer without inventing anything.",
    "Rejecting: the opening hours are invented, and the agent's identity says it never invents facts "
    "about Sam. Counterproductive memorisation, see https://example.com/a-very-long-unbreakable-url-"
    "segment-that-goes-on-and-on-and-on-forever for the rule.",
    "Changing my mind after reading the other review: the opening hours contradict identity/core. "
    "Reconsidering my approval as counterproductive memorisation of irrelevant details.",
]


@pytest.fixture
def decided(demo_snapshot, cast):
    """A candidate with two reviews and a history: one reviewer changed her mind."""
    response = Node.objects.get(snapshot=demo_snapshot, section="conversation", index=2)
    candidate = Candidate.objects.create(agent=demo_snapshot.agent, snapshot=demo_snapshot, response=response,
                                         response_key="r2", divergence=2.5, response_text=response.text)
    candidate.decide(cast.reviewer, "approve", COMMENTS[0])
    # Made a minute ago: the page shows the history once a review was changed.
    Review.objects.filter(candidate=candidate).update(created_at=timezone.now() - timedelta(minutes=1))
    candidate.decide(cast.reviewer2, "reject", COMMENTS[1])
    candidate.decide(cast.reviewer, "reject", COMMENTS[2])
    return candidate


def test_decision_comments_wrap_between_words_on_a_phone(browser, live_server, cast, decided, screenshots):
    page = login(browser, live_server, cast.viewer.username, cast.password)
    for viewport in (PHONE, SMALL_LAPTOP, DESKTOP):
        page.set_viewport_size(viewport)
        page.goto(live_server.url + reverse("candidate_detail", args=[decided.pk]))
        screenshots(page, f"candidate-{viewport['width']}")
        cells = page.locator("#decisions-table td.line, #decision-history td.line")
        assert cells.count() == 2 + 3  # two reviews; three decisions in the history
        for i in range(cells.count()):
            cell = cells.nth(i)
            assert cell.evaluate(SPLIT_WORDS) == [], (viewport, cell.inner_text())
            # Nothing sticks out of its cell: the URL breaks, nothing else does.
            assert cell.evaluate("c => c.scrollWidth <= c.clientWidth + 1"), (viewport, cell.inner_text())
        if viewport is not DESKTOP:
            # A comment has a line of its own, as wide as the row, below who decided what.
            width = page.locator("#decisions-table td.line").first.bounding_box()["width"]
            assert width > 280
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        else:
            # On a desktop the tables stay tables: their heads show, a comment in its column.
            assert page.locator("#decisions-table thead").bounding_box()["height"] > 20
            assert page.locator("#decision-history th", has_text="Comment").is_visible()
    page.context.close()


def test_a_demo_sized_snapshot_page_is_short_on_a_phone(browser, live_server, cast, demo_snapshot, screenshots):
    ScoringRun.objects.create(agent=demo_snapshot.agent, snapshot=demo_snapshot, mode="finetune",
                              status="succeeded", created_by=cast.operator)
    page = login(browser, live_server, cast.operator.username, cast.password)
    url = live_server.url + reverse("snapshot_detail", args=[demo_snapshot.pk])
    for viewport, most in ((PHONE, 8_000), (DESKTOP, 4_500)):
        page.set_viewport_size(viewport)
        page.goto(url)
        folded = page.evaluate("document.documentElement.scrollHeight")
        screenshots(page, f"snapshot-{viewport['width']}")
        # Shown whole it was 20,500 px on the phone, 11,200 px at 1280 px.
        assert folded < most, (viewport, folded)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        # The runs table wraps each run's cells rather than scrolling them sideways in its card.
        runs = page.locator("#snapshot-runs")
        assert runs.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth"), viewport
        assert "fine-tune candidates" in runs.inner_text()
        summary = page.locator("#conversation-fold > summary")
        assert "Show the next 119 nodes" in summary.inner_text()
        # Opening the fold shows the rest, in the page already.
        summary.click()
        assert page.locator("#conversation-fold li").count() == 119
        assert page.locator("#conversation-fold li").last.is_visible()
        assert "Hide the next 119 nodes" in summary.inner_text()
        unfolded = page.evaluate("document.documentElement.scrollHeight")
        assert folded < unfolded * 0.4, (viewport, folded, unfolded)
    page.context.close()


def test_a_link_to_a_folded_node_opens_the_fold(browser, live_server, cast, demo_snapshot):
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.set_viewport_size(PHONE)
    memory = Node.objects.get(snapshot=demo_snapshot, section="conversation", index=103)
    assert memory.memory_key  # a memory deep in the fold
    url = live_server.url + reverse("snapshot_detail", args=[demo_snapshot.pk])

    page.goto(f"{url}?node={memory.pk}")
    assert page.evaluate("document.getElementById('conversation-fold').open")
    node = page.locator(f"#node-{memory.pk}")
    # In view, below the sticky top bar (two rows on a phone), not under it.
    top, bar = node.evaluate("n => [n.getBoundingClientRect().top, document.querySelector('header').offsetHeight]")
    assert node.is_visible() and bar <= top < PHONE["height"] / 2, (bar, top)
    assert node.locator("a.memkey").get_attribute("href") == reverse("memory_detail", args=[memory.memory_id])

    # snapshot.js opens it where the browser does not: close the fold and
    # send a hashchange of the script's own (Chromium opens it by itself).
    page.evaluate("document.getElementById('conversation-fold').open = false; scrollTo(0, 0)")
    page.evaluate("window.dispatchEvent(new HashChangeEvent('hashchange'))")
    assert page.evaluate("document.getElementById('conversation-fold').open")
    assert node.evaluate("n => n.getBoundingClientRect().top < innerHeight")
    page.context.close()


def _landed_in_the_fold(page, node_id, viewport):
    """The snapshot page is open at the node, in the opened fold, in view below the top bar."""
    page.wait_for_url(f"**#node-{node_id}")
    assert page.evaluate("document.getElementById('conversation-fold').open")
    node = page.locator(f"#node-{node_id}")
    top, bar = node.evaluate("n => [n.getBoundingClientRect().top, document.querySelector('header').offsetHeight]")
    assert node.is_visible() and bar <= top < viewport["height"] / 2, (viewport, bar, top)


def test_a_memorys_page_and_a_heatmap_cell_link_into_the_fold(browser, live_server, cast, demo_snapshot, screenshots):
    # Nothing linked to a node before: the memory's page named "Position 103"
    # and linked the snapshot's first page, the cell page linked neither.
    memory_node = Node.objects.get(snapshot=demo_snapshot, section="conversation", index=103)
    response = Node.objects.responses().filter(snapshot=demo_snapshot, index__gt=103).order_by("index").first()
    run = ScoringRun.objects.create(agent=demo_snapshot.agent, snapshot=demo_snapshot, mode="full",
                                    status="succeeded", created_by=cast.operator)
    CellScore.objects.create(run=run, memory=memory_node.memory, response=response, delta=1.25)
    page = login(browser, live_server, cast.viewer.username, cast.password)
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        page.goto(live_server.url + reverse("memory_detail", args=[memory_node.memory_id]))
        screenshots(page, f"memory-{viewport['width']}")
        # Where it appears: its text is readable, on a line of its own on a phone (it was ~18 px wide).
        text = page.locator("#memory-appearances td.line").first
        assert text.bounding_box()["width"] > (300 if viewport is PHONE else 500), viewport
        assert text.evaluate(SPLIT_WORDS) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        page.locator("#memory-appearances a", has_text="conversation[103]").click()
        _landed_in_the_fold(page, memory_node.pk, viewport)
        screenshots(page, f"memory-node-{viewport['width']}")

        cell = reverse("heatmap_cell", args=[run.pk, memory_node.memory_id, response.pk])
        for link, node_id in ((f"conversation entry {response.index}", response.pk),
                              ("conversation[103]", memory_node.pk)):
            page.goto(live_server.url + cell)
            page.locator("#cell a", has_text=link).click()
            _landed_in_the_fold(page, node_id, viewport)
        screenshots(page, f"cell-node-{viewport['width']}")
    page.context.close()


def test_the_fold_closes_from_its_end(browser, live_server, cast, demo_snapshot, screenshots):
    page = login(browser, live_server, cast.viewer.username, cast.password)
    url = live_server.url + reverse("snapshot_detail", args=[demo_snapshot.pk])
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        page.goto(url)
        page.locator("#conversation-fold > summary").click()
        hide = page.locator("#conversation-fold [data-fold-hide]")
        # The link up to the summary is for pages without snapshot.js.
        assert not page.locator("#conversation-fold [data-fold-top]").is_visible()
        hide.scroll_into_view_if_needed()
        screenshots(page, f"fold-end-{viewport['width']}")
        assert hide.inner_text() == "Hide these 119 nodes"
        hide.click()
        assert not page.evaluate("document.getElementById('conversation-fold').open")
        summary = page.locator("#conversation-fold > summary")
        # The reader is at the summary now, not past the end of a shorter page.
        box = summary.bounding_box()
        assert 0 <= box["y"] < viewport["height"], (viewport, box)
        assert summary.evaluate("s => document.activeElement === s")
        assert "Show the next 119 nodes" in summary.inner_text()
    page.context.close()


def test_without_javascript_the_folds_end_links_to_its_summary(browser, live_server, cast, demo_snapshot):
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", cast.viewer.username)
    page.fill("input[name=password]", cast.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    page.goto(live_server.url + reverse("snapshot_detail", args=[demo_snapshot.pk]))
    page.locator("#conversation-fold > summary").click()
    assert not page.locator("#conversation-fold [data-fold-hide]").is_visible()
    page.locator("#conversation-fold [data-fold-top]").click()
    box = page.locator("#conversation-fold > summary").bounding_box()
    assert 0 <= box["y"] < PHONE["height"], box
    context.close()


def test_the_agent_pages_snapshots_table_fits_a_phone(browser, live_server, cast, demo_snapshot):
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + reverse("agent_detail", args=[demo_snapshot.agent_id]))
    table = page.locator("#agent-snapshots")
    # Stacked, not scrolled sideways in its box; the head hidden, each count names itself.
    assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth")
    assert "24 memories" in table.inner_text() and "responses" in table.inner_text()
    page.set_viewport_size(DESKTOP)
    assert "24 memories" not in table.inner_text()  # in columns, under their heads
    page.context.close()


def test_a_memorys_response_tables_fit_a_phone(browser, live_server, cast, transactional_db):
    from tests.matrix_data import matrix_run

    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    run = matrix_run(agent, [[1.5, -0.7]], keys=["people/alice"])
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + reverse("memory_detail", args=[run.memories[0].pk]))
    says = {"#memory-top-cells": "importance 1.500 nats", "#memory-better-without": "delta -0.700 nats"}
    for table, named in says.items():
        # Stacked: not squeezed into a column a letter wide; the value names itself.
        shown = page.locator(table)
        assert shown.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth"), table
        assert named in " ".join(shown.inner_text().split()), (table, shown.inner_text())
    page.context.close()


def test_the_runs_list_and_the_activity_log_fit_a_phone(browser, live_server, cast, demo_snapshot):
    ScoringRun.objects.create(agent=demo_snapshot.agent, snapshot=demo_snapshot, mode="full", status="succeeded",
                              calls_total=25, calls_done=25, tokens_scored=184_752, created_by=cast.operator)
    Activity.record(cast.operator, "started run", ScoringRun.objects.get(), mode="full", params={"seed": 1})
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.set_viewport_size(PHONE)
    for url, table, said in ((reverse("run_list"), "#run-table", "184,752 tokens"),
                             (reverse("activity_list"), "#activity-table", "started run")):
        page.goto(live_server.url + url)
        shown = page.locator(table)
        # Stacked: not scrolled sideways in its box, its cells (and what names them) on screen.
        assert shown.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth"), url
        assert said in " ".join(shown.inner_text().split()), (url, shown.inner_text())
    page.context.close()


def test_the_memories_list_fits_a_phone(browser, live_server, cast, transactional_db, screenshots):
    from tests.matrix_data import matrix_run

    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    keys = ["projects/bcachefs-tests", "people/mum"]
    texts = ["Kestrel is Sam's side project: a ktest-based regression suite for bcachefs with 412 tests.",
             "Sam's mother, Ngozi Okafor, lives in Enugu. She calls on Sunday evenings around 19:00 UK time."]
    matrix_run(agent, [[1.5, 0.5], [0.25, 0.5]], keys=keys, memory_texts=texts)
    Memory.objects.filter(agent=agent, key=keys[0]).update(weight=0.42, last_scored=timezone.now())
    page = login(browser, live_server, cast.viewer.username, cast.password)
    url = live_server.url + reverse("memory_list", args=[agent.pk])
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        page.goto(url)
        screenshots(page, f"memories-{viewport['width']}")
        # Not scrolled sideways in its box (at 390 px the table was 743 px wide in a 362 px box).
        box = page.locator(".table-wrap")
        assert box.evaluate("b => b.scrollWidth <= b.clientWidth"), viewport
        assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth"), viewport
        row = " ".join(page.locator("tbody tr", has_text=keys[0]).inner_text().split())
        if viewport is PHONE:
            # Stacked: each number names itself, the text on a line of its own as wide as the row.
            for said in ("weight 0.420", "scored just now", "importance 2.000 nats", "max 1.500 nats"):
                assert said in row, (said, row)
            text = page.locator("tbody tr", has_text=keys[0]).locator("td.line")
            assert text.bounding_box()["width"] > 300
            # Not scored in the background: "weight —" (as the note below says), no "scored —".
            other = " ".join(page.locator("tbody tr", has_text=keys[1]).inner_text().split())
            assert "weight —" in other and "scored" not in other and other.count("—") == 1, other
            # The head's sort links stay on screen, and sort.
            weight = page.locator("thead a", has_text="weight")
            link = weight.bounding_box()
            assert weight.is_visible() and 0 <= link["x"] and link["x"] + link["width"] <= viewport["width"]
            weight.click()
            page.wait_for_url("**sort=-weight**")
            assert page.locator("tbody tr").first.inner_text().startswith(keys[0])
        else:
            # Columns, under their heads, as before.
            assert "nats" not in row and "importance" not in row
            assert page.locator("th", has_text="Current text").is_visible()
            assert page.locator("th", has_text="Memory, as it is now").is_visible()
            assert not page.locator("th", has_text="Sort by").is_visible()
    page.context.close()


# Lines the chosen label of a select takes at the width its text has (an
# underestimate: the arrow takes some of it), and lines the select shows. A
# native select shows one whatever its label, cutting the end off.
CHOICE_LINES = """(s) => {
  const cs = getComputedStyle(s);
  const probe = (style) => {
    const p = document.createElement('div');
    p.textContent = s.selectedOptions[0].text;
    p.style.cssText = 'position:absolute; visibility:hidden;' + style;
    p.style.font = cs.font;
    p.style.lineHeight = cs.lineHeight;
    document.body.append(p);
    const height = p.getBoundingClientRect().height;
    p.remove();
    return height;
  };
  const line = probe('white-space:nowrap');
  const room = s.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const needed = Math.round(probe(`width:${room}px; white-space:normal`) / line);
  const shown = Math.round((s.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom)) / line);
  return [needed, shown];
}"""


def test_the_agent_forms_choices_are_read_whole_on_a_phone(browser, live_server, cast, transactional_db,
                                                          screenshots):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    page = login(browser, live_server, cast.operator.username, cast.password)
    for url in (reverse("agent_create"), reverse("agent_edit", args=[agent.pk])):
        for viewport in (PHONE, DESKTOP):
            page.set_viewport_size(viewport)
            page.goto(live_server.url + url)
            assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth"), (url, viewport)
            selects = page.locator("main form[method=post] select")
            assert selects.count() >= 3  # the server API, where samples go, what their context holds
            for i in range(selects.count()):
                select = selects.nth(i)
                box = select.bounding_box()
                assert 0 <= box["x"] and box["x"] + box["width"] <= viewport["width"], (url, viewport)
                for value in select.evaluate("s => [...s.options].map(o => o.value)"):
                    select.select_option(value)
                    # "memscore (/score protocol, e.g. the reference server)" lost its end at 390 px
                    # (the labels are shorter now, test_agent_form_defaults; the CSS wraps any that grow).
                    needed, shown = select.evaluate(CHOICE_LINES)
                    assert shown >= needed, (url, viewport, value, needed, shown)
                    if viewport is DESKTOP:
                        assert shown == 1, (url, value)  # one line, as before
            backend = page.locator("select[name=backend]")
            backend.select_option("memscore")
            backend.scroll_into_view_if_needed()
            screenshots(page, f"agent-form-{url.strip('/').replace('/', '-')}-{viewport['width']}")
    # On a phone the open list is under the field, within the screen, its choices wrapping.
    page.set_viewport_size(PHONE)
    backend.click()
    for option in ("memscore (/score protocol", "vLLM", "SGLang"):
        box = page.get_by_role("option", name=option).bounding_box()
        assert box and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], (option, box)
    screenshots(page, "agent-form-phone-open")
    page.get_by_role("option", name="SGLang").click()
    assert backend.input_value() == "sglang"
    page.context.close()


def test_a_training_jobs_samples_fit_a_phone(browser, live_server, cast, agent, screenshots):
    """Walkthrough: the samples scrolled sideways, their response text off
    screen, wrapped so narrow that each row was hundreds of pixels of blank."""
    from candidate_factory import make_approved

    from scoring.outbox import send_to_training

    make_approved(agent, 3, response_text="I checked the ticket: the firmware fix ships on Friday. " * 3)
    job = send_to_training(agent, cast.operator)
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + reverse("train_job_detail", args=[job.pk]))
    table = page.locator("#samples-table")
    assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    text = " ".join(table.inner_text().split())
    assert "divergence 2.00 nats" in text and "the firmware fix ships on Friday" in text
    rows = table.locator("tbody tr")
    assert rows.count() == 3 and all(rows.nth(i).bounding_box()["height"] < 200 for i in range(3))
    screenshots(page, "train-job-390")
    page.context.close()


def test_the_compare_pages_read_on_a_phone(browser, live_server, cast, transactional_db, screenshots):
    """Walkthrough: the chooser's only action, its Compare button, was off
    screen to the right; the comparison's Change columns, scrolled to, lost
    the memory of their row."""
    from tests.matrix_data import matrix_run

    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    keys = [f"projects/a-rather-long-memory-key-{i}" for i in range(3)]
    before = matrix_run(agent, [[1.0, 2.0], [0.5, 0.0], [3.0, 0.2]], keys=keys)
    after = matrix_run(agent, [[0.2, 2.5], [0.5, 0.1], [1.0, 0.0]], keys=keys)
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + reverse("run_compare_choose", args=[after.pk]))
    button = page.get_by_role("link", name=f"Compare #{before.pk} → #{after.pk}")
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    screenshots(page, "compare-choose-390")
    button.click()
    page.wait_for_url(f"**{reverse('run_compare', args=[before.pk, after.pk])}")
    table = page.locator("table.compare")
    first = table.locator("tbody tr").first.locator("td").first
    left = first.bounding_box()["x"]
    table.locator("xpath=..").evaluate("w => { w.scrollLeft = w.scrollWidth; }")
    page.wait_for_timeout(100)
    assert abs(first.bounding_box()["x"] - left) < 1, "the memory stays in view as the numbers scroll"
    change = table.locator("tbody tr").first.locator("td").nth(3)
    assert change.bounding_box()["x"] + change.bounding_box()["width"] <= PHONE["width"] + 1
    screenshots(page, "compare-390-scrolled")
    page.context.close()


def test_the_candidate_page_reaches_its_decision_soon_on_a_phone(browser, live_server, cast, agent, screenshots):
    """Walkthrough: on a phone the Decide buttons were ~2,000 px down, below
    the whole context, and the keyboard shortcuts card was shown to a touch
    screen with no keys."""
    from candidate_factory import detail_url, make_candidate

    long = "The sync runs nightly and Alice checks the logs each morning before stand-up. " * 25
    c = make_candidate(agent, user_text=long, memory_text=long)
    page = login(browser, live_server, cast.reviewer.username, cast.password,
                 viewport=PHONE, has_touch=True, is_mobile=True)
    page.goto(live_server.url + detail_url(c))
    box = page.locator("#candidate-context").bounding_box()
    assert box["height"] <= 22 * 16 + 1, box
    # The rest scrolls inside.
    assert page.locator("#candidate-context").evaluate("e => e.scrollHeight > e.clientHeight")
    # It opens at its end: the nodes just before the response (re-check walkthrough).
    page.wait_for_function("() => { const c = document.getElementById('candidate-context');"
                           " return c.scrollTop + c.clientHeight >= c.scrollHeight - 2; }", timeout=5000)
    approve = page.get_by_role("button", name="Approve")
    assert approve.bounding_box()["y"] < 1800, approve.bounding_box()
    assert not page.locator(".keyboard-help").first.is_visible()
    screenshots(page, "candidate-phone")
    page.context.close()


def test_the_agents_list_fits_a_phone(browser, live_server, cast, demo_snapshot):
    # Walkthrough: its columns from "Snapshots" on were off screen, with no hint.
    page = login(browser, live_server, cast.viewer.username, cast.password)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + reverse("agent_list"))
    table = page.locator("#agent-table")
    assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth")
    said = " ".join(table.inner_text().split())
    assert "24 memories" in said and "1 snapshot" in said and "0 active runs" in said, said
    page.context.close()
