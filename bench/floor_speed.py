"""How close a full matrix comes to the causal floor, with causal windows on and off.

    .venv/bin/python bench/floor_speed.py [--engine ngram] [--memories 50] [--turns 160] [--us-per-token 0]
    .venv/bin/python bench/floor_speed.py --engine transformer   # 8 memories, 24 turns; make install-model

Imports a snapshot with N memories spread evenly through a conversation of
about T tokens (n-gram: 50 memories, ~20k tokens; transformer: 8 memories,
~2k tokens) into a throwaway SQLite database (or BENCH_DATABASE_URL, a scratch
database: it is migrated and written to), starts the reference server
(memscore's /score), and runs the same full matrix twice in this process:
optimisation off (MEMSCORE_CAUSAL_WINDOWS off, every call asks for every
response; on the transformer engine also no KV prefix cache, so every call
runs the whole prompt) and on. Each run gets a server of its own. Prints, per
run, the tokens computed as the server reports them (/v1/_control/stats'
scored_tokens) against the naive (N+1)·T and the floor T + Σ (T − pᵢ), pᵢ the
token position of memory i's first appearance in the baseline prompt; the
wall times; and the largest difference between the two matrices (targets 1e-6
n-gram, 1e-4 transformer). --us-per-token makes the server wait that long per
computed token, as a GPU's prefill would (0: the engine's own cost only).
Prints figures only; it asserts nothing.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from scratch import setup_django

CONCURRENCY = 8
# Per engine: the snapshot's default size, and the matrices' agreement promised.
ENGINES = {
    "ngram": {"memories": 50, "turns": 160, "target": 1e-6},
    "transformer": {"memories": 8, "turns": 24, "target": 1e-4},
}
WEIGHTS = Path(__file__).resolve().parent.parent / "var" / "realmodel-weights"  # shared with tests/realmodel


def snapshot_doc(memories, turns):
    """`turns` user/assistant exchanges, a memory before every turns/memories-th one."""
    every = max(1, turns // memories)
    conversation, placed = [], 0
    for t in range(turns):
        if t % every == 0 and placed < memories:
            i = placed
            conversation.append({"memory": f"topic/{i:03d}",
                                 "text": f"Note {i}: locker {i * 7 % 97} holds the box of item {i}, "
                                         f"checked on day {i % 28 + 1} by the night shift."})
            placed += 1
        k = t % max(placed, 1)
        conversation.append({"role": "user", "text": f"Turn {t}: where is the box of item {k}, and who checked it?"})
        conversation.append({"role": "assistant",
                             "text": f"The box of item {k} is in locker {k * 7 % 97}; the night shift checked it "
                                     f"on day {k % 28 + 1}. Anything else about turn {t}?",
                             "timestamp": f"2026-11-20T{10 + t // 60:02d}:{t % 60:02d}:00Z"})
    return {
        "agent": "floor",
        "taken_at": "2026-11-20T23:00:00Z",
        "system": [{"role": "system", "text": "You are a benchmark assistant. Answer from your notes."}],
        "identity": [],
        "journal": [],
        "conversation": conversation,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=sorted(ENGINES), default="ngram")
    parser.add_argument("--memories", type=int, help="default: 50 (ngram), 8 (transformer)")
    parser.add_argument("--turns", type=int, help="default: 160 (ngram), 24 (transformer)")
    parser.add_argument("--us-per-token", type=float, default=0.0)
    args = parser.parse_args()
    args.memories = args.memories or ENGINES[args.engine]["memories"]
    args.turns = args.turns or ENGINES[args.engine]["turns"]

    scratch = tempfile.mkdtemp(prefix="memscore-floor-")
    setup_django(scratch, os.environ.get("BENCH_DATABASE_URL"))
    # Imported once Django is set up for the scratch installation.
    from django.conf import settings

    from refserver.testing import run_refserver
    from scoring.client import InferenceClient
    from scoring.context import chat_template, snapshot_tokens
    from scoring.engine import run_inline, start_run
    from scoring.importing import import_snapshot
    from scoring.models import Agent, Snapshot

    Agent.objects.filter(name="floor").delete()
    agent = Agent.objects.create(name="floor", base_url="http://127.0.0.1:9/", model="memscore-ref",
                                 score_concurrency=CONCURRENCY)
    runs, snapshot, shape = {}, None, None
    for optimised in (False, True):
        with run_refserver(Path(scratch) / f"refserver-{optimised}", *server_args(args.engine, optimised)) as server:
            agent.base_url = server.base_url
            agent.save(update_fields=["base_url"])
            if snapshot is None:  # the import tokenizes on the server
                snapshot = import_snapshot(agent, snapshot_doc(args.memories, args.turns),
                                           source=Snapshot.Source.CLI, actor_name="bench")
                with InferenceClient.for_agent(agent) as client:
                    shape = floor_of(snapshot_tokens(snapshot), chat_template(agent, client.tokenize))
            server.control(latency_per_token_us=args.us_per_token)
            settings.MEMSCORE_CAUSAL_WINDOWS = optimised
            before = server.stats()["scored_tokens"]
            started = time.perf_counter()
            run = run_inline(start_run(snapshot, "full"))
            wall = time.perf_counter() - started
            after = server.stats()["scored_tokens"]
            runs[optimised] = (run, wall, after["computed"] - before["computed"], after["prompt"] - before["prompt"])

    report(args, shape, runs)


def server_args(engine, optimised):
    """The reference server's arguments: the transformer engine's prefix cache is part of the optimisation."""
    if engine == "ngram":
        return ()
    return ("--engine", "transformer", "--weights-dir", str(WEIGHTS), "--prefix-cache-mb", "2048" if optimised else "0")


def floor_of(tokens, template):
    """(T, naive, floor, N): the baseline prompt's length and the two costs."""
    ids, _ = tokens.sequence(0, len(tokens.entries), template=template)
    keys = list(dict.fromkeys(tokens.identity_keys + [e.memory_key for e in tokens.entries if e.memory_key]))
    total, positions = len(ids), []
    for key in keys:
        _, _, changed_from, _ = tokens.causal_sequence(0, len(tokens.entries), key, template=template)
        positions.append(changed_from)  # = the memory's first position in the baseline prompt
    return total, (len(keys) + 1) * total, total + sum(total - p for p in positions), len(keys)


def matrix(run):
    return {(m, r): d for m, r, d in run.cells.values_list("memory_id", "response_id", "delta")}


def report(args, shape, runs):
    total, naive, floor, n = shape
    (off, off_wall, off_computed, off_prompt), (on, on_wall, on_computed, on_prompt) = runs[False], runs[True]
    a, b = matrix(off), matrix(on)
    worst = max(abs(a[k] - b[k]) for k in a) if a.keys() == b.keys() else float("nan")
    unaffected = on.cells.filter(state="unaffected").count()
    print(f"engine: {args.engine}; snapshot: N = {n} memories, T = {total:,} tokens in the baseline prompt, "
          f"{on.snapshot.response_count} responses; runs {off.status} / {on.status}")
    print(f"naive (N+1)·T:                     {naive:12,}")
    print(f"floor T + Σ(T − pᵢ):               {floor:12,}  ({floor / naive:.2f} of naive)")
    off_label = "causal windows off" + (", no cache" if args.engine == "transformer" else "")
    on_label = "causal windows on" + (", KV cache" if args.engine == "transformer" else "")
    print(f"computed, {off_label + ':':<28}{off_computed:12,}  ({off_computed / floor:.3f}x the floor; "
          f"prompts sent {off_prompt:,})")
    print(f"computed, {on_label + ':':<28}{on_computed:12,}  ({on_computed / floor:.3f}x the floor; "
          f"prompts sent {on_prompt:,}; target <= 1.05x)")
    print(f"asked by memscore (run page):      {on.tokens_scored:12,}")
    print(f"wall time, off / on:               {off_wall:8.2f} s / {on_wall:.2f} s  ({off_wall / on_wall:.2f}x faster)"
          f"  [server wait {args.us_per_token:g} us per computed token]")
    print(f"cells: {len(b):,}, of which unaffected (before their memory, exact 0): {unaffected:,}")
    print(f"largest |delta(off) − delta(on)|:  {worst:.3g}  (target {ENGINES[args.engine]['target']:g})")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
