"""How fast every list page answers at 50,000 memories and 100,000 candidates.

    .venv/bin/python bench/list_pages_speed.py [--memories 50000] [--candidates 100000]
                                               [--requests 20] [--database-url URL]

Builds, in a throwaway database (SQLite in a temporary folder, unless
--database-url names an empty scratch database: it is migrated and written
to), one agent with 50,000 memories (weights and last-scored times on most)
whose latest full run scored 500 of them over 200 responses; 100,000
candidates of two agents, a fifth reviewed; 100,000 activity entries, 2,000
runs and 500 training jobs. Then times each list page with Django's test
client (server time, no network): first pages, deep pages, each sort and
filter. Prints the median and the worst request of each, the median time in
SQL and the queries per request; exits 1 when a median is over TARGET_SECONDS.
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from scratch import add_database_url_argument, setup_django

TARGET_SECONDS = 0.2
BATCH = 5000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=50_000)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    add_database_url_argument(parser)
    parser.add_argument("--folder", help="keep the installation here and reuse it on the next run "
                                         "(default: a temporary folder, removed at the end)")
    return parser.parse_args()


def build_memories(agent, n_memories, rng):
    # Imported here, not at the top: Django is configured by setup_django() in main().
    from django.utils import timezone

    from scoring.models import Memory
    from tests.matrix_data import matrix_run

    now = timezone.now()
    memories = []
    for i in range(n_memories):
        scored = rng.random() < 0.8
        memories.append(Memory(
            agent=agent, key=f"mem/{i:06d}", text=f"Memory {i}: " + "what the agent knows " * 6,
            weight=rng.uniform(-1, 3) if scored else None,
            last_scored=now - timedelta(minutes=rng.randint(1, 100_000)) if scored else None,
        ))
    Memory.objects.bulk_create(memories, batch_size=BATCH)
    # The latest full run: 500 of them over 200 responses (100,000 cells).
    deltas = [[round(rng.gauss(0.3, 1.0), 3) for _ in range(200)] for _ in range(500)]
    keys = [f"mem/{i:06d}" for i in rng.sample(range(n_memories), 500)]
    return matrix_run(agent, deltas, keys=keys)


def build_candidates(agents, n_candidates, users, rng):
    from django.utils import timezone

    from scoring.models import Candidate, Node, Review, Snapshot
    from scoring.models.snapshots import Section

    now = timezone.now()
    per_snapshot = 1000
    for s in range(-(-n_candidates // per_snapshot)):
        agent = agents[s % len(agents)]
        snapshot = Snapshot.objects.create(agent=agent, taken_at=now - timedelta(minutes=s),
                                           source=Snapshot.Source.API)
        count = min(per_snapshot, n_candidates - s * per_snapshot)
        Node.objects.bulk_create([
            Node(snapshot=snapshot, section=Section.CONVERSATION, index=i, role="assistant",
                 text=f"answer {i} of snapshot {s}: " + "words " * 30, timestamp=now, token_ids=[1, 2],
                 n_tokens=2)
            for i in range(count)
        ], batch_size=BATCH)
        Candidate.objects.bulk_create([
            Candidate(agent=agent, snapshot=snapshot, response=node, response_key=f"{snapshot.pk}:{node.index}",
                      divergence=round(rng.uniform(1.0, 20.0), 3), response_text=node.text,
                      context_ids=[1, 2, 3], continuation_ids=[7, 8, 9])
            for node in Node.objects.filter(snapshot=snapshot).only("id", "index", "text")
        ], batch_size=BATCH)
    ids = list(Candidate.objects.values_list("pk", flat=True))
    Review.objects.bulk_create([
        Review(candidate_id=pk, reviewer=rng.choice(users), decision=rng.choice(["approve", "skip"]))
        for pk in rng.sample(ids, len(ids) // 5)
    ], batch_size=BATCH)
    Candidate.objects.filter(pk__in=rng.sample(ids, min(len(ids), 900))).update(status="approved")


def build_the_rest(agents, run, users, rng):
    from django.utils import timezone

    from scoring.models import Activity, ScoringRun, Snapshot, TrainJob
    from scoring.models.runs import Mode, RunStatus

    now = timezone.now()
    # Spread over the candidates' snapshots: a snapshot has a handful of runs.
    snapshots = list(Snapshot.objects.exclude(pk=run.snapshot_id))
    ScoringRun.objects.bulk_create([
        ScoringRun(agent=snapshots[i % len(snapshots)].agent, snapshot=snapshots[i % len(snapshots)],
                   mode=rng.choice(list(Mode)),
                   status=rng.choice([RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.PARTIAL]),
                   calls_total=10, calls_done=10, created_at=now - timedelta(minutes=i), finished_at=now)
        for i in range(2000)
    ], batch_size=BATCH)
    TrainJob.objects.bulk_create([
        TrainJob(agent=rng.choice(agents), status=TrainJob.Status.SUCCEEDED, server_job_id=f"job-{i}",
                 created_by=users[0], created_at=now - timedelta(minutes=i), accepted_at=now)
        for i in range(500)
    ], batch_size=BATCH)
    verbs = ["started run", "approved", "rejected", "uploaded snapshot", "sent to training"]
    Activity.objects.bulk_create([
        Activity(actor=rng.choice(users), actor_name="someone", verb=rng.choice(verbs), target_type="candidate",
                 target_id=str(i), target_repr=f"candidate {i}", created_at=now - timedelta(seconds=i * 30))
        for i in range(100_000)
    ], batch_size=BATCH)


def build(args):
    from django.contrib.auth.models import Group, User

    from scoring.models import Agent

    rng = random.Random(7)
    me = User.objects.create_superuser("bench-operator", "op@example.com", "bench-password-123")
    reviewers = [User.objects.create_user(f"reviewer-{i}") for i in range(5)]
    for user in reviewers:
        user.groups.add(Group.objects.get(name="reviewer"))
    agents = [Agent.objects.create(name=f"agent-{i}", base_url="http://127.0.0.1:9/v1", model="bench")
              for i in range(2)]
    run = build_memories(agents[0], args.memories, rng)
    build_candidates(agents, args.candidates, reviewers, rng)
    build_the_rest(agents, run, [me, *reviewers], rng)
    return me, agents, run


def pages(agents, run, candidates):
    """{page name: [urls]}: first and deep pages, each sort and filter."""
    from django.urls import reverse

    memories = reverse("memory_list", args=[agents[0].pk])
    deep_candidates = candidates // 50 // 2
    return {
        "memories": [memories, f"{memories}?page=250"],
        "memories by key": [f"{memories}?sort=key", f"{memories}?sort=key&page=400"],
        "memories by weight": [f"{memories}?sort=-weight", f"{memories}?sort=weight&page=300"],
        "memories by scored": [f"{memories}?sort=-last_scored&page=100"],
        "memories by max": [f"{memories}?sort=-importance_max&page=3", f"{memories}?sort=importance_max"],
        "memories search": [f"{memories}?q=mem/0012", f"{memories}?q=knows&page=20"],
        "memories flagged": [f"{memories}?flag=harmful", f"{memories}?flag=never"],
        "candidates": [reverse("candidate_list"), f"{reverse('candidate_list')}?page={deep_candidates}"],
        "candidates filtered": [f"{reverse('candidate_list')}?agent={agents[1].pk}&status=pending&page=100",
                                f"{reverse('candidate_list')}?status=approved"],
        "review queue": [reverse("review_queue"), f"{reverse('review_queue')}?agent={agents[0].pk}"],
        "runs": [reverse("run_list"), f"{reverse('run_list')}?page=30&status=failed"],
        "training": [reverse("train_job_list"), f"{reverse('train_job_list')}?page=8"],
        "activity": [reverse("activity_list"), f"{reverse('activity_list')}?page=1500",
                     f"{reverse('activity_list')}?verb=approved&page=50"],
        "agents": [reverse("agent_list")],
        "snapshot": [reverse("snapshot_detail", args=[run.snapshot_id])],
    }


def timed(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}")
    sql = sum(float(q["time"]) for q in queries.captured_queries)
    return elapsed, sql, len(queries.captured_queries)


def built_before(folder):
    """(me, agents, run) of an installation built by an earlier run, or None."""
    from django.contrib.auth.models import User

    from scoring.models import Agent, ScoringRun
    from scoring.models.runs import Mode

    me = User.objects.filter(username="bench-operator").first()
    run = ScoringRun.objects.filter(mode=Mode.FULL, calls_total__gt=10).first()
    if me is None or run is None or not (Path(folder) / "built").exists():
        return None
    return me, list(Agent.objects.order_by("pk")), run


def main():
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="memscore-bench-") as tmp:
        folder = args.folder or tmp
        setup_django(folder, args.database_url)
        from django.conf import settings
        from django.test import Client
        from django.test.utils import setup_test_environment

        setup_test_environment()  # lets the test client's "testserver" host in
        started = time.perf_counter()
        found = built_before(folder)
        if found is None:
            found = build(args)
            (Path(folder) / "built").touch()
        me, agents, run = found
        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        print(f"{args.memories} memories, {args.candidates} candidates, 100000 activities on {engine}: "
              f"ready in {time.perf_counter() - started:.0f}s")

        client = Client()
        client.force_login(me)
        worst_median = 0.0
        for name, urls in pages(agents, run, args.candidates).items():
            for url in urls:
                client.get(url)  # warm up templates, connections and the run's cached stats
            samples, sql, queries = [], [], []
            for i in range(args.requests):
                elapsed, in_sql, n = timed(client, urls[i % len(urls)])
                samples.append(elapsed)
                sql.append(in_sql)
                queries.append(n)
            median = statistics.median(samples)
            worst_median = max(worst_median, median)
            print(f"{name:<20} median {median * 1000:7.1f} ms   worst {max(samples) * 1000:7.1f} ms   "
                  f"in SQL {statistics.median(sql) * 1000:6.1f} ms   ({min(queries)}-{max(queries)} queries)")
        if worst_median > TARGET_SECONDS:
            print(f"FAIL: a median is over {TARGET_SECONDS * 1000:.0f} ms")
            return 1
        print(f"ok: every median under {TARGET_SECONDS * 1000:.0f} ms")
        return 0


if __name__ == "__main__":
    sys.exit(main())
