"""The estimate mode against the exact full matrix on one snapshot (issue 11).

    .venv/bin/python bench/estimate_vs_exact.py [--memories 200] [--turns 400] [--duplicates 10]
                                                [--ablations 16 32 64 128] [--seed 1]
    .venv/bin/python bench/estimate_vs_exact.py --real-model [--ablations 8 16] [--weights-dir DIR]

Synthetic (the default): floor_speed's snapshot (memories spread through a
conversation, later turns asking about earlier memories) with --duplicates of
its memories copied word for word under a second key (copy/NNN, right after
the original): N = --memories keys in all, with the n-gram engine of the
reference server. --real-model: the real-model demo's snapshot
(scoring/demo/smollm2_snapshot.json, 8 memories) on the reference server's
transformer engine (SmolLM2-135M on the CPU; `make install-model`); with
N = 8 the exact matrix takes 9 calls, fewer than any useful K, so there the
figures say how close the fit comes, not what it saves.

Imports the snapshot into a throwaway SQLite database (or BENCH_DATABASE_URL),
runs the exact full matrix once and the estimate for each K, and prints per K:
calls against the exact N+1, the Spearman correlation of per-memory importance
(maths.memory_importance: the sum of a memory's positive deltas) with the
exact matrix's, the overlap of the top-10 memories (top N/2 under 20 memories), the mean absolute error
per cell, the median held-out R² and the wall time; then, for the duplicated
memories, their mean importance exact and estimated against the other
memories', and the Spearman and top-10 overlap over the other memories alone (with
how many copies the estimate puts in its top 10). Figures only; it asserts nothing. The issue's target: Spearman ≥ 0.9
and top-10 overlap ≥ 8 at ≤ 0.25 × the exact calls for N = 200.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from floor_speed import snapshot_doc
from scratch import ROOT, setup_django

CONCURRENCY = 8
TOP = 10
DEMO_SNAPSHOT = ROOT / "scoring" / "demo" / "smollm2_snapshot.json"


def duplicated_doc(memories, turns, duplicates):
    """floor_speed's snapshot with `duplicates` memories copied under a second key
    (copy/NNN, just after the original, before any response that asks for it):
    `memories` keys in all; {copy key: original key}."""
    doc = snapshot_doc(memories - duplicates, turns)
    originals = [e for e in doc["conversation"] if "memory" in e]
    every = max(1, len(originals) // max(duplicates, 1))
    chosen = originals[::every][:duplicates]
    pairs, conversation = {}, []
    for entry in doc["conversation"]:
        conversation.append(entry)
        if any(entry is c for c in chosen):
            copy = "copy/" + entry["memory"].split("/", 1)[1]
            conversation.append({"memory": copy, "text": entry["text"]})
            pairs[copy] = entry["memory"]
    doc["conversation"] = conversation
    return doc, pairs


def cells(run):
    return {(m, r): d for m, r, d in run.cells.values_list("memory_id", "response_id", "delta")}


def importance(matrix, memory_ids):
    from scoring import maths

    deltas = {m: [] for m in memory_ids}
    for (m, _), d in matrix.items():
        if d is not None:
            deltas[m].append(d)
    return np.array([maths.memory_importance(deltas[m]) for m in memory_ids])


def top(values, n):
    return set(np.argsort(-values, kind="mergesort")[:n].tolist())


def compare(snapshot, ablations, seed, duplicated):
    """Print the exact matrix's cost, then one line per K, then the duplicates' figures."""
    from scoring.engine import run_inline, start_run
    from scoring.models import Memory
    from scoring.modes.estimate import spearman

    started = time.perf_counter()
    exact_run = run_inline(start_run(snapshot, "full"))
    exact_wall = time.perf_counter() - started
    exact = cells(exact_run)
    memory_ids = sorted({m for m, _ in exact})
    keys = dict(Memory.objects.filter(pk__in=memory_ids).values_list("pk", "key"))
    exact_importance = importance(exact, memory_ids)
    n = len(memory_ids)
    # Top 10; half the memories where there are fewer than 20 (the real-model demo's 8: top 4).
    top_n = min(TOP, max(1, n // 2))
    print(f"snapshot: N = {n} memories ({len(duplicated)} of them copies of another), {snapshot.response_count} "
          f"responses; exact: {n + 1} calls, {exact_wall:.1f} s, {exact_run.status}")
    in_pairs = [i for i, m in enumerate(memory_ids) if keys[m] in duplicated or keys[m] in duplicated.values()]
    others = [i for i in range(n) if i not in set(in_pairs)]
    # Without the duplicated memories: how the estimate does where leave-one-out has no blind spot.
    print(f"{'K':>5} {'calls':>6} {'of N+1':>7} {'Spearman':>9} {'top-' + str(top_n):>7} {'MAE/cell':>9} "
          f"{'R² med':>7} {'wall s':>7}" + (f" | w/o copies: {'Spearman':>9} {'top-' + str(top_n):>7} "
                                            f"{'copies in est. top-' + str(top_n):>20}" if in_pairs else ""))
    estimates = {}
    for k in ablations:
        started = time.perf_counter()
        run = run_inline(start_run(snapshot, "estimate", params={"ablations": k, "seed": seed}))
        wall = time.perf_counter() - started
        got = cells(run)
        got_importance = importance(got, memory_ids)
        estimates[k] = got_importance
        mae = np.mean([abs((got.get(cell) or 0.0) - (d or 0.0)) for cell, d in exact.items()])
        r2 = (run.result or {}).get("r2_median")
        rho = spearman(got_importance, exact_importance)
        print(f"{k:>5} {k + 1:>6} {(k + 1) / (n + 1):>7.2f} {'n/a' if rho is None else f'{rho:.3f}':>9} "
              f"{len(top(got_importance, top_n) & top(exact_importance, top_n)):>7} {mae:>9.4f} "
              f"{'n/a' if r2 is None else f'{r2:.3f}':>7} {wall:>7.1f}", end="")
        if in_pairs:
            rest = spearman(got_importance[others], exact_importance[others])
            overlap = len(top(got_importance[others], top_n) & top(exact_importance[others], top_n))
            copies = len(top(got_importance, top_n) & set(in_pairs))
            print(f" |             {'n/a' if rest is None else f'{rest:.3f}':>9} {overlap:>7} {copies:>20}", end="")
        print()
    if in_pairs:
        print(f"duplicated memories ({len(in_pairs)} keys, {len(duplicated)} pairs): mean importance (nats) "
              f"exact {exact_importance[in_pairs].mean():.3f} vs the others' {exact_importance[others].mean():.3f}")
        for k, got_importance in estimates.items():
            print(f"  K = {k:>3}: estimated {got_importance[in_pairs].mean():.3f} vs the others' "
                  f"{got_importance[others].mean():.3f}")


def convert_weights(path):
    """The first use converts the weights (~20 s): done before the server starts, which
    would not answer in time otherwise; in a subprocess, as the test tier does."""
    code = ("import sys; from pathlib import Path; from refserver.transformer.weights import converted_dir; "
            "converted_dir(Path(sys.argv[1]))")
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, check=True, timeout=600)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=200, help="memory keys in all, copies included")
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--duplicates", type=int, default=10, help="memories copied under a second key")
    parser.add_argument("--ablations", type=int, nargs="+", help="K values [16 32 64 128; 8 16 with --real-model]")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--real-model", action="store_true",
                        help="the real-model demo's snapshot on the transformer engine (make install-model)")
    parser.add_argument("--weights-dir", type=Path, default=ROOT / "var" / "realmodel-weights",
                        help="--real-model: converted weights, shared with the test tier (converted on first use)")
    args = parser.parse_args()
    ablations = args.ablations or ([8, 16] if args.real_model else [16, 32, 64, 128])

    begun = time.perf_counter()
    scratch = tempfile.mkdtemp(prefix="memscore-estimate-")
    setup_django(scratch, os.environ.get("BENCH_DATABASE_URL"))
    # Imported once Django is set up for the scratch installation.
    from refserver.testing import run_refserver
    from scoring.importing import import_snapshot
    from scoring.models import Agent, Snapshot

    if args.real_model:
        convert_weights(args.weights_dir)
        doc, duplicated = json.loads(DEMO_SNAPSHOT.read_text()), {}
        server_args = ("--engine", "transformer", "--weights-dir", str(args.weights_dir))
    else:
        doc, duplicated = duplicated_doc(args.memories, args.turns, args.duplicates)
        server_args = ()
    Agent.objects.filter(name=doc["agent"]).delete()
    with run_refserver(Path(scratch) / "refserver", *server_args) as server:
        agent = Agent.objects.create(name=doc["agent"], base_url=server.base_url, model="memscore-ref",
                                     score_concurrency=CONCURRENCY)
        snapshot = import_snapshot(agent, doc, source=Snapshot.Source.CLI, actor_name="bench")
        print(f"engine: {'transformer (SmolLM2-135M, CPU)' if args.real_model else 'n-gram'}; seed {args.seed}")
        compare(snapshot, ablations, args.seed, duplicated)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"whole bench {time.perf_counter() - begun:.0f} s")


if __name__ == "__main__":
    main()
