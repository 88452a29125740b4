"""The estimate mode against the exact full matrix on one snapshot (issue 11).

    .venv/bin/python bench/estimate_vs_exact.py [--memories 50] [--turns 160] [--ablations 16 32 64] [--seed 1]

Imports floor_speed's synthetic snapshot (N memories spread through a
conversation, later turns asking about earlier memories) into a throwaway
SQLite database (or BENCH_DATABASE_URL, a scratch database), starts the
reference server (n-gram engine), runs the exact full matrix once and the
estimate for each K, and prints per K: calls against the exact N+1, the
Spearman correlation of per-memory importance (sum of the cells' positive
deltas) with the exact matrix's, the overlap of the top-10 memories, the mean
absolute error per cell, the median held-out R² and the wall times. Figures
only; it asserts nothing. The issue's target: Spearman ≥ 0.9 and top-10
overlap ≥ 8 at ≤ 0.25 × the exact calls for N = 200 (--memories 200 --turns 400).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from floor_speed import snapshot_doc
from scratch import setup_django

CONCURRENCY = 8


def ranks(values):
    """Average ranks (ties share), for Spearman's correlation without scipy."""
    values = np.asarray(values, dtype=float)
    order = values.argsort(kind="mergesort")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(len(values))
    for v in np.unique(values):
        tied = values == v
        ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def cells(run):
    return {(m, r): d for m, r, d in run.cells.values_list("memory_id", "response_id", "delta")}


def importance(matrix, memory_ids):
    total = dict.fromkeys(memory_ids, 0.0)
    for (m, _), d in matrix.items():
        total[m] += max(0.0, d or 0.0)
    return [total[m] for m in memory_ids]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=50)
    parser.add_argument("--turns", type=int, default=160)
    parser.add_argument("--ablations", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="memscore-estimate-")
    setup_django(scratch, os.environ.get("BENCH_DATABASE_URL"))
    # Imported once Django is set up for the scratch installation.
    from refserver.testing import run_refserver
    from scoring.engine import run_inline, start_run
    from scoring.importing import import_snapshot
    from scoring.models import Agent, Snapshot

    Agent.objects.filter(name="floor").delete()
    with run_refserver(Path(scratch) / "refserver") as server:
        agent = Agent.objects.create(name="floor", base_url=server.base_url, model="memscore-ref",
                                     score_concurrency=CONCURRENCY)
        snapshot = import_snapshot(agent, snapshot_doc(args.memories, args.turns),
                                   source=Snapshot.Source.CLI, actor_name="bench")
        started = time.perf_counter()
        exact_run = run_inline(start_run(snapshot, "full"))
        exact_wall = time.perf_counter() - started
        exact = cells(exact_run)
        memory_ids = sorted({m for m, _ in exact})
        exact_importance = importance(exact, memory_ids)
        top_exact = set(np.argsort(exact_importance)[::-1][:10].tolist())
        n = len(memory_ids)
        print(f"snapshot: N = {n} memories, {snapshot.response_count} responses; exact: {n + 1} calls, "
              f"{exact_wall:.1f} s, {exact_run.status}")
        print(f"{'K':>5} {'calls':>6} {'of N+1':>7} {'Spearman':>9} {'top-10':>7} {'MAE/cell':>9} "
              f"{'R² med':>7} {'wall s':>7}")
        for k in args.ablations:
            started = time.perf_counter()
            run = run_inline(start_run(snapshot, "estimate", params={"ablations": k, "seed": args.seed}))
            wall = time.perf_counter() - started
            got = cells(run)
            got_importance = importance(got, memory_ids)
            top_got = set(np.argsort(got_importance)[::-1][:10].tolist())
            mae = np.mean([abs((got.get(key) or 0.0) - (d or 0.0)) for key, d in exact.items()])
            r2 = (run.result or {}).get("r2_median")
            print(f"{k:>5} {k + 1:>6} {(k + 1) / (n + 1):>7.2f} {spearman(got_importance, exact_importance):>9.3f} "
                  f"{len(top_got & top_exact):>7} {mae:>9.4f} {'n/a' if r2 is None else f'{r2:.3f}':>7} "
                  f"{wall:>7.1f}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
