"""How close a full matrix comes to the ideal of score_concurrency calls at once.

    .venv/bin/python bench/score_speed.py [--memories 200] [--responses 40] [--latency-ms 50] [--cli] [--worker]
                                          [--repeat N]

Starts the reference server with --latency-ms 50 --capacity 8, imports a
snapshot with 200 memories into a throwaway SQLite database (or
BENCH_DATABASE_URL, a scratch database: it is migrated and written to), and
runs a full matrix (201 calls) in this process with score_concurrency 8.
Prints the wall time beside one call at a time (201 × 50 ms) and the ideal
(201 × 50 ms / 8); the target is within 1.2× of the ideal. The server's own
compute per call is printed too: on a small machine it, not the latency, can
be what bounds the run. With --cli, the same matrix is then run again by
`manage.py score SNAPSHOT --mode full --inline` in a child process: its wall time,
and the time from its run's creation to its end, against the same ideal. With
--worker, by a Celery worker (one prefork process, the embedded broker): the
time from the task's start to the run's end, and apart the broker's wait.
With --repeat N every measurement is made N times, in rounds (the worker's
one after the other in one worker: its first run is a fresh process's), and
medians are printed with their ranges: on this shared machine one round can
be 10-20% off. The details above them are the last round's. Prints figures
only; it asserts nothing.

Measured 2026-11-27 (a fifth session, a quiet machine, load average 0.8-1.0),
after a task alone on its run began to claim two spare calls (executor.py's
SPARE_CALLS: a thread whose answer is back sends the next call at once,
instead of waiting for the database thread to claim one), --cli --worker
--repeat 5: in this process 1.18x (1.16-1.22x), the CLI 1.16x (1.16-1.17x),
a worker 1.15x (first run) and 1.14x (1.13-1.16x), the bare client 1.10x
(memscore 1.07x it); memscore's CPU 3.0 ms a call, the server's 2.4 ms. The
same on PostgreSQL (BENCH_DATABASE_URL, --repeat 3): 1.20x, the CLI 1.19x, a
worker 1.17x and 1.21x. An A/B in one session (--cli --repeat 3, two rounds,
alternating): the code before 1.21x/1.23x in this process and 1.20x/1.21x
the CLI; with two spare calls 1.16x/1.19x and 1.15x/1.20x; one or four
spare calls the same within the noise. Between an answer and the next call
a slot now waits ~0.4 ms (median; 1.1-3 ms before, more during a store);
what is left over the bare client is the run's start (planning, ~12 ms,
counted from the run's creation), the baseline's store before its variants
(~5 ms) and the run's end (the last store and finishing, ~15-20 ms).

Measured 2026-11-27 (a fourth session, another machine of the kind, load
average 0.8-1.3), --cli --worker --repeat 5, at its start and its end: in
this process 1.28x and 1.35x the ideal, the CLI 1.31x and 1.33x, a worker
1.31x/1.27x and 1.28x/1.31x (first run/later runs), the bare client 1.11x
and 1.12x (memscore 1.16-1.21x it); memscore's CPU 4.0 ms a call, the
server's 3.3 ms. The session's code (failure paths and pages only) against
the code before it, alternating, twice: 1.34x/1.33x both. Over the target
on this machine, as the bare client's 1.11x leaves memscore only ~8%.

Measured 2026-11-27 (a third session, a quiet machine, load average
0.5-1.1), --cli --worker --repeat 5, four times over the session: the CLI
1.19-1.23x (medians; rounds 1.16-1.25x), a worker 1.19-1.22x (first run)
and 1.19-1.22x (later runs), in this process 1.19-1.25x, the bare client
1.09-1.11x: at the target on a good measurement, 1-3% over it on others.
Where the rest goes (a timeline of one run): the server takes ~53 ms a
call at 50 ms latency (its asyncio sleep overshoots ~0.7 ms, HTTP ~1-2
ms; the bare client pays it too), 26 calls follow each other on the
longest chain, and memscore adds ~1.5 ms between an answer and the next
call (claim 0.5 ms, hand-over and request 0.5-0.7 ms, the answer's
parsing 0.3 ms) and ~40 ms once (the run's start, the baseline's store
and the fan-out to 8 threads). Tried, each A/B in one process over 10-14
alternating rounds, and dropped as no different within the noise: HTTP
clients opened ahead (and threads started) while the baseline is out,
the memories read then, larger or smaller store batches, the cells' index
on response dropped, SQLite's cache_size, mmap_size and
wal_autocheckpoint, a shorter GIL switch interval, gc.freeze() after
start-up, the server computing nothing (FAKE scores), and on PostgreSQL a
store thread of its own (claims no longer waiting for stores) and
server-side binding.

Measured 2026-11-27 (a later session, another machine of the same kind,
load average 0.9-1.3), --cli --repeat 3 alternating with the code before
this session's changes, twice: memscore's CPU 5.2-5.4 -> 4.3-4.5 ms a call,
in this process 1.35-1.37x -> 1.28-1.32x, the CLI 1.39-1.46x -> 1.24-1.29x,
the bare client 1.11-1.17x. The changes: one httpx pool per thread (httpx's
shared pool polled every connection under one lock for each request), a
run's calls and its cells written in multi-row INSERTs, no second index on
the cells' run, store() without django.db.connection's proxy. This machine
was slower than the earlier one: there the code before measured 1.20-1.22x
(the CLI). What remains, per call on the critical path (timed in a run):
the answer waits ~1 ms for the database thread (busy storing ~35% of the
time: SQLite's index upkeep for the cells is most of it), the claim ~1.2 ms,
the hand-over to a pool thread ~0.6 ms, the request's preparation and
httpx's ~1 ms.

On PostgreSQL (BENCH_DATABASE_URL, the same machine and day, --cli --worker
--repeat 3, one after the other): the code before 2.22x in this process, the
CLI 2.30x, a worker 2.13x (first run) and 2.28x; now 1.68x, 1.56x, 1.34x and
1.45x. The cells went in as six arrays (unnest) instead of rows of
parameters: 8,000 cells took 117 ms of memscore's CPU, not 250-320 ms. What
is left there is mostly PostgreSQL's own CPU on the same two cores (its
foreign-key checks of each cell, ~180 ms a run, and planning each
statement) and a WAL flush per commit (~0.4 ms).

Measured 2026-11-27 with --cli --worker --repeat 5, twice, on a quiet
machine (load average 0.6-0.7), after the chat template's ids were shared
between processes through Django's cache (a fresh process no longer pays a
/tokenize round trip once any process tokenized it within the hour): in
this process 1.16x and 1.19x the ideal (1.15-1.21x), the bare client 1.09x
and 1.10x, the CLI 1.20x and 1.22x from its run's creation (1.19-1.24x), a
worker's first run 1.19x both times and its later runs 1.18x (1.15-1.26x).
Before that change, the same day: the CLI 1.28x, in this process 1.22x.

Measured 2026-11-26 with --cli --worker --repeat 5 (load average 0.5):
in this process 1.31x the ideal (1.24-1.50x), the bare client 1.12x
(1.10-1.32x), the CLI 1.35x from its run's creation (1.32-1.40x), a worker's
first run 1.25x and its later runs 1.22x (1.20-1.22x); the CLI alternating
with the code of the session before gave the same within the noise.

Measured before on the shared 2-core machine (issue 10; load average 0.5-0.7),
alternating with the code before: memscore 3.0-3.6 ms of CPU a call (3.5-4.1),
the reference server 2.5-3.1 ms; in this process 1.23-1.27x the ideal
(1.28-1.32x), the CLI 1.29-1.31x from its run's creation to its end
(1.35-1.43x), the worker 1.23-1.26x from the run's start to its end
(1.31-1.34x), the bare client 1.13-1.18x. What is left is mostly not
memscore's: the bare client's floor (the server's compute on the same two
cores), the baseline's call alone before its variants (a prefix cache:
about 54 ms, 0.04x) and, in a fresh process, one /tokenize round trip for the
chat template (the reference server gives /tokenize the same 50 ms latency;
about 57 ms, 0.045x; a worker pays it once). Between the baseline's store
and the last answer a wave of 8 calls takes ~56 ms against the calls' own
~54 ms. Earlier: 1.30-1.37x, CLI 1.33-1.51x, worker 1.33-1.48x; before
orjson and batched stores 1.6-1.7x, CLI 1.8x.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch import ROOT, setup_django

CONCURRENCY = 8


def process_cpu(pid):
    """User + system CPU seconds of a process (Linux /proc), 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def snapshot_doc(memories, responses):
    """Every memory surfaces once; responses are spread among them."""
    conversation = []
    every = max(1, memories // responses)
    for i in range(memories):
        conversation.append({"memory": f"topic/{i:03d}", "text": f"Locker {i * 7 % 97} holds box {i}."})
        if i % every == every - 1 and sum(1 for n in conversation if n.get("role") == "assistant") < responses:
            conversation.append({"role": "user", "text": f"Where is box {i}?"})
            conversation.append({"role": "assistant", "text": f"In locker {i * 7 % 97}.",
                                 "timestamp": f"2026-11-20T10:{len(conversation) % 60:02d}:00Z"})
    return {
        "agent": "bench",
        "taken_at": "2026-11-20T12:00:00Z",
        "system": [{"role": "system", "text": "You are a benchmark."}],
        "identity": [],
        "journal": [],
        "conversation": conversation,
    }


def main():
    """Set up, time one call alone, then the whole matrix: one story in order
    (the figures are printed by report())."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=200)
    parser.add_argument("--responses", type=int, default=40)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--cli", action="store_true", help="also time manage.py score --inline")
    parser.add_argument("--worker", action="store_true", help="also time a Celery worker (the embedded broker)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every measurement: medians and ranges are printed (the machine is noisy)")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="memscore-bench-")
    # A queue of this run's own, read by the settings (--worker).
    os.environ["CELERY_QUEUE"] = f"score-speed-{os.getpid()}"
    setup_django(scratch, os.environ.get("BENCH_DATABASE_URL"))
    # Imported once Django is set up for the scratch installation.
    import httpx

    from refserver.testing import run_refserver
    from scoring.context import SnapshotTokens
    from scoring.engine import run_inline, start_run
    from scoring.heatmap.matrix import load_matrix
    from scoring.importing import import_snapshot
    from scoring.models import Agent, Snapshot

    Agent.objects.filter(name="bench").delete()
    flags = ["--latency-ms", f"{args.latency_ms:g}", "--capacity", str(CONCURRENCY)]
    # The import tokenizes 16 texts at a time: on a server of its own, so the
    # scoring server's "most calls in flight" counts only score calls.
    with run_refserver(Path(scratch) / "tokenizer") as tokenizer:
        agent = Agent.objects.create(name="bench", base_url=tokenizer.base_url, model="memscore-ref",
                                     score_concurrency=CONCURRENCY)
        snapshot = import_snapshot(agent, snapshot_doc(args.memories, args.responses),
                                   source=Snapshot.Source.CLI, actor_name="bench")
    with run_refserver(Path(scratch) / "refserver", *flags) as server:
        agent.base_url = server.base_url
        agent.save()
        ids = SnapshotTokens(snapshot.pk).tokens(0, 10**9)
        # One call alone: the latency plus the server's compute for this context.
        body = {"model": agent.model, "prompt": ids, "logprobs": 1}
        singles = []
        with httpx.Client(timeout=60) as client:
            for _ in range(5):
                started = time.perf_counter()
                client.post(f"{server.base_url}/score", json=body).raise_for_status()
                singles.append(time.perf_counter() - started)
        single = sorted(singles)[len(singles) // 2]

        rounds = []
        for _ in range(max(1, args.repeat)):
            server.control(latency_ms=args.latency_ms, capacity=CONCURRENCY)  # resets the counters
            started, cpu, server_cpu = time.perf_counter(), time.process_time(), process_cpu(server.proc.pid)
            run = start_run(snapshot, "full")
            planned = time.perf_counter() - started
            run = run_inline(run)
            wall = time.perf_counter() - started
            cpu, server_cpu = time.process_time() - cpu, process_cpu(server.proc.pid) - server_cpu
            stats = server.stats()
            rounds.append({"wall": wall, "bare": time_bare(run, agent)})
            if args.cli:
                rounds[-1]["cli"] = time_cli(snapshot, run)
        # One worker for every round: its first run pays what a fresh process
        # pays (imports, connections; the chat template comes from the shared
        # cache, which this process filled), the others are a worker's usual.
        workers = time_worker(snapshot, scratch, max(1, args.repeat)) if args.worker else []

    spans = [(f - s).total_seconds() for s, f in run.calls.values_list("started_at", "finished_at")]
    started = time.perf_counter()
    matrix = load_matrix(run)
    loaded = time.perf_counter() - started

    report(args, run, snapshot, ids, wall=wall, planned=planned, single=single, stats=stats, spans=spans,
           cpu=cpu, server_cpu=server_cpu, matrix=matrix, loaded=loaded)
    ideal = run.calls_total * args.latency_ms / 1000 / CONCURRENCY
    print_rounds(rounds, workers, ideal)


def spread(values, ideal):
    """'median (min-max)' of seconds, and the same against the ideal."""
    values = sorted(values)
    mid = values[len(values) // 2]
    if len(values) == 1:
        return f"{mid:5.2f} s ({mid / ideal:.2f}x)"
    return f"{mid:5.2f} s ({mid / ideal:.2f}x; {values[0] / ideal:.2f}-{values[-1] / ideal:.2f}x over {len(values)})"


def print_rounds(rounds, workers, ideal):
    """Each path's time against the ideal, medians where there were rounds."""
    bare = [r["bare"] for r in rounds]
    print(f"in this process:                 {spread([r['wall'] for r in rounds], ideal)}")
    print(f"bare client (same requests):     {spread(bare, ideal)}: what this server and machine allow; "
          f"memscore in this process {sorted(r['wall'] / r['bare'] for r in rounds)[len(rounds) // 2]:.2f}x it")
    if "cli" in rounds[0]:
        print(f"manage.py score --inline:        {spread([r['cli'][1] for r in rounds], ideal)} from its run's "
              f"creation to its end; {spread([r['cli'][0] for r in rounds], ideal)} the whole command "
              "(Python and Django starting)")
    if workers:
        first, *later = workers
        print(f"Celery worker, first run:        {spread([first[0]], ideal)} from the task's start to the run's "
              f"end (a fresh process; the chat template from the shared cache); {first[1]:.2f} s waiting in the "
              "embedded broker before")
        if later:
            print(f"Celery worker, later runs:       {spread([w[0] for w in later], ideal)}")


def time_bare(run, agent):
    """The same run's requests, prepared up front, sent by CONCURRENCY threads
    through the same client with nothing else: no claims, no database, no
    cells. The floor of this server on this machine (its own compute is
    serialised by its event loop, on the cores memscore also uses), against
    which memscore's own overhead shows."""
    from concurrent.futures import ThreadPoolExecutor

    from scoring.client import InferenceClient
    from scoring.context import chat_template, snapshot_tokens
    from scoring.engine.calls import prepare

    tokens = snapshot_tokens(run.snapshot)
    with InferenceClient.for_agent(agent) as client:
        template = chat_template(agent, client.tokenize)
        requests = [prepare(call, tokens, template) for call in run.calls.select_related("memory").order_by("seq")]
        requests = [r for r in requests if r.asked]
        started = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda r: client.score_detailed(r.ids, r.asked, first_needed=r.first_needed), requests))
        return time.perf_counter() - started


def time_cli(snapshot, previous):
    """(the command's wall time, its run's created_at to finished_at) of the
    same matrix started by `manage.py score --inline` in a child process."""
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "score", str(snapshot.pk), "--mode", "full", "--inline"],
                   check=True, env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    command = time.perf_counter() - started
    run = type(previous).objects.filter(snapshot=snapshot).exclude(pk=previous.pk).latest("created_at")
    return command, (run.finished_at - run.created_at).total_seconds()


def time_worker(snapshot, scratch, times=1):
    """[(the run's started_at to finished_at, its creation to started_at)] of
    `times` full matrices run one after the other by one Celery worker (one
    prefork process, this installation's embedded broker, a queue of its
    own). The broker polls its folder every second or so: the time waiting
    there is given apart."""
    from scoring.engine import start_run
    from scoring.followups import Followups
    from scoring.models import ScoringRun
    from scoring.tasks.enqueue import enqueue_on_commit

    queue = os.environ["CELERY_QUEUE"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log_path = Path(scratch) / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "memscore_site", "worker", "-Q", queue, "--pool=prefork",
             "--concurrency=1", "--without-mingle", "--without-gossip", "-l", "info", "-n", f"{queue}@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while b" ready." not in log_path.read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        timings = []
        for _ in range(times):
            run = start_run(snapshot, "full")
            enqueue_on_commit(Followups(runs=[run.pk]))
            deadline = time.monotonic() + 300
            while ScoringRun.objects.active().filter(pk=run.pk).exists():
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker did not finish the run:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.05)
            run.refresh_from_db()
            timings.append(((run.finished_at - run.started_at).total_seconds(),
                            (run.started_at - run.created_at).total_seconds()))
        return timings
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def report(args, run, snapshot, ids, *, wall, planned, single, stats, spans, cpu, server_cpu, matrix, loaded):
    """Print the figures against the ideal of the same run."""
    latency = args.latency_ms / 1000
    calls = run.calls_total
    serial = calls * latency
    ideal = serial / CONCURRENCY
    print(f"full matrix: {args.memories} memories x {snapshot.response_count} responses, "
          f"{len(ids):,} tokens per call, {calls} calls, status {run.status}")
    print(f"wall time:                       {wall:8.2f} s  (planning the run: {planned:.2f} s)")
    print(f"one at a time ({calls} x {args.latency_ms:g} ms):    {serial:8.2f} s  ({serial / wall:.1f}x the wall time)")
    print(f"ideal ({calls} x {args.latency_ms:g} ms / {CONCURRENCY}):        {ideal:8.2f} s")
    if ideal:
        print(f"ratio to the ideal:              {wall / ideal:8.2f}x  (target <= 1.2x)")
    print(f"one call alone on the server:    {single * 1000:8.1f} ms  "
          f"(latency {args.latency_ms:g} ms + compute {max(0.0, single - latency) * 1000:.1f} ms)")
    print(f"calls in flight at most:         {stats['max_concurrent_seen']:8d}  "
          f"(claimed on average {sum(spans) / wall:.1f}, spare calls waiting for a thread included; a call "
          f"took {sum(spans) / len(spans) * 1000:.0f} ms from claim to stored)")
    print(f"CPU time, memscore (this process): {cpu:6.2f} s  ({cpu / calls * 1000:.1f} ms a call)")
    print(f"CPU time, reference server:        {server_cpu:6.2f} s  ({server_cpu / calls * 1000:.1f} ms a call)")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
          "(the run is CPU-bound when the CPU times above exceed wall time x free CPUs)")
    print(f"load_matrix ({len(matrix['memories'])} x {len(matrix['responses'])}):   {loaded * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
