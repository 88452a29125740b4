"""The SQL and JavaScript that repeat a scoring.maths formula agree with it.

views/memories.py aggregates cells in SQL (importance sum and max, net delta,
the memory page's cell lists) and static/memscore/heatmap.js colours and sorts
the heatmap in the browser; each names the maths function it mirrors. Here
both run on the same data as maths: the SQL on the test database, the
JavaScript with node.
"""

import json
import math
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from scoring import maths
from scoring.models import Agent, CellScore
from scoring.views.memories import importance_sql, memory_stats_query
from tests.matrix_data import FAILED, matrix_run

NODE = shutil.which("node")
HEATMAP_JS = Path(settings.BASE_DIR) / "static" / "memscore" / "heatmap.js"

# Values on and around every threshold, both signs, and zero.
EDGES = [
    0.0, -0.0, 0.01, 0.0100001, 0.009999, -0.01, -0.0100001, -0.009999,
    0.5, -0.5, -0.5000001, -0.4999999, 2.0, -2.0, -2.0000001, 1e-9, -1e-9, 123.456, -123.456,
]


def _rows(seed=7, count=30, width=12):
    """Memories' rows of deltas: the edge values one per row (so a row's net
    is the value itself, exactly), rows summing past -HARMFUL_NATS, rows of
    noise, some failed cells, and random ones."""
    rng = random.Random(seed)
    rows = [[edge] + [0.0] * (width - 1) for edge in EDGES]
    rows += [[-0.06] * width, [0.005] * width, [FAILED] * width, [0.3] + [FAILED] * (width - 1)]
    for _ in range(count):
        rows.append([
            FAILED if rng.random() < 0.1 else rng.choice([rng.gauss(0, 0.3), rng.gauss(0, 3), rng.choice(EDGES)])
            for _ in range(width)
        ])
    return rows


def _deltas(row):
    """A row as maths sees it: failed cells are None."""
    return [None if v == FAILED else v for v in row]


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="mirrors", base_url="http://127.0.0.1:9/v1", model="m")


@pytest.mark.django_db
def test_the_sql_cell_importance_is_maths_cell_importance(agent):
    run = matrix_run(agent, _rows())
    cells = CellScore.objects.filter(run=run, failed=False).annotate(importance=importance_sql())
    assert cells.count() > 400
    for cell in cells:
        assert cell.importance == maths.cell_importance(cell.delta), cell.delta


@pytest.mark.django_db
def test_the_sql_aggregates_and_flags_are_maths(agent):
    rows = _rows()
    run = matrix_run(agent, rows)
    by_memory = {row["memory_id"]: row for row in memory_stats_query(run)}
    for memory, row in zip(run.memories, rows):
        sql, deltas = by_memory[memory.pk], _deltas(row)
        scored = sum(d is not None for d in deltas)
        assert sql["scored"] == scored
        assert sql["failed_cells"] == len(deltas) - scored
        if not scored:
            # SQL's SUM and MAX of no rows are NULL where maths's sums are 0.
            assert sql["importance_sum"] is sql["importance_max"] is sql["net"] is None
            assert maths.importance_max(deltas) is None
        else:
            assert sql["importance_sum"] == pytest.approx(maths.importance_sum(deltas), rel=1e-12, abs=1e-12)
            assert sql["importance_max"] == maths.importance_max(deltas)
            assert sql["net"] == pytest.approx(maths.net_delta(deltas), rel=1e-12, abs=1e-12)
        flags = maths.memory_flags(sql["scored"], sql["importance_max"], sql["net"])
        assert flags == maths.memory_flags(scored, maths.importance_max(deltas), maths.net_delta(deltas)), row


@pytest.mark.django_db
def test_the_memory_pages_cell_lists_are_maths(agent):
    run = matrix_run(agent, _rows())
    cells = CellScore.objects.filter(run=run, failed=False)
    deltas = list(cells.values_list("delta", flat=True))
    # views/memories.py memory_detail: the responses it matters for, and those better without it.
    mattering = sorted(cells.filter(delta__gt=maths.ZERO_THRESHOLD).values_list("delta", flat=True))
    better = sorted(cells.filter(delta__lt=-maths.ZERO_THRESHOLD).values_list("delta", flat=True))
    assert mattering == sorted(d for d in deltas if maths.cell_importance(d) > 0)
    assert better == sorted(d for d in deltas if maths.is_better_without(d))


def _run_js(rows):
    """heatmap.js's formulas over `rows` (None = failed), run by node."""
    script = """
    const m = require(process.argv[1]);
    const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const nan = (v) => (v === null ? NaN : v);
    const out = input.rows.map((row) => {
      const values = row.map(nan);
      const r = m.rowImportance(values, 0, values.length, input.zero);
      const net = values.filter((v) => v === v).reduce((a, b) => a + b, 0);
      return {
        importance: values.map((v) => { const x = m.cellImportance(v, input.zero); return x === x ? x : null; }),
        harmful: values.map((v) => m.isHarmful(v, input.harm)),
        better: values.map((v) => m.isBetterWithout(v, input.zero)),
        sum: r.sum, max: r.max, positives: r.positives, net_harmful: m.isHarmful(net, input.harm),
      };
    });
    process.stdout.write(JSON.stringify(out));
    """
    data = {"rows": rows, "zero": maths.ZERO_THRESHOLD, "harm": maths.HARMFUL_NATS}
    done = subprocess.run(
        [NODE, "-e", script, str(HEATMAP_JS)], input=json.dumps(data), capture_output=True, text=True,
        timeout=30, check=True,
    )
    return json.loads(done.stdout)


def _assert_js_agrees(rows):
    for row, js in zip(rows, _run_js(rows)):
        assert js["importance"] == [maths.cell_importance(d) for d in row]
        assert js["harmful"] == [maths.is_harmful(d) for d in row]
        assert js["better"] == [maths.is_better_without(d) for d in row]
        assert js["sum"] == pytest.approx(maths.importance_sum(row), rel=1e-12, abs=1e-12)
        # 0 in JavaScript where maths says None (nothing scored): it only orders rows.
        assert js["max"] == (maths.importance_max(row) or 0.0)
        assert js["positives"] == sum(1 for d in row if d is not None and maths.cell_importance(d) > 0)
        assert js["net_harmful"] == maths.is_harmful(maths.net_delta(row))


@pytest.mark.skipif(NODE is None, reason="needs node")
def test_the_heatmap_js_formulas_are_maths():
    _assert_js_agrees([_deltas(row) for row in _rows()])


@pytest.mark.skipif(NODE is None, reason="needs node")
@hypothesis_settings(max_examples=20, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6), st.sampled_from(EDGES)), max_size=20),
                min_size=1, max_size=20))
def test_the_heatmap_js_formulas_are_maths_on_any_cells(rows):
    _assert_js_agrees(rows)


def test_no_mirror_is_left_unnamed():
    """Every formula heatmap.js repeats says which maths function it mirrors."""
    source = HEATMAP_JS.read_text()
    for js_name, python_name in [
        ("cellImportance", "cell_importance"), ("isHarmful", "is_harmful"),
        ("isBetterWithout", "is_better_without"), ("rowImportance", "importance_sum"),
    ]:
        assert f"function {js_name}(" in source
        assert f"mirrors scoring.maths.{python_name}" in source
        assert callable(getattr(maths, python_name))
    assert math.isclose(maths.HARMFUL_NATS, 0.5)
