"""How fast the review queue and the candidate list answer with 10,000 candidates.

    .venv/bin/python bench/review_queue_speed.py [--candidates 10000] [--requests 300] [--database-url URL]

Builds 10,000 candidates of two agents (100 snapshots of 100 responses each,
a fifth of them already reviewed by someone else, some held by another
reviewer) in a throwaway database: SQLite in a temporary folder, unless
--database-url names an empty scratch database (it is migrated and written to).
Then times, with Django's test client (server time, no network):

- the review queue, as a reviewer who decides each candidate it shows
  (the decision is not timed), so every request takes and reserves a new one;
- the candidate list, across pages, statuses and agents.

Prints the median and 95th percentile of each and the queries per request;
exits 1 when a 95th percentile is over TARGET_P95_SECONDS.
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta

from scratch import add_database_url_argument, setup_django

TARGET_P95_SECONDS = 0.25
RESPONSES_PER_SNAPSHOT = 100


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per page")
    add_database_url_argument(parser)
    return parser.parse_args()


def build(n_candidates):
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from scoring.models import Agent, Candidate, Node, Review, Snapshot
    from scoring.models.snapshots import Section

    rng = random.Random(7)
    reviewer_group = Group.objects.get(name="reviewer")
    me = User.objects.create_user("bench-reviewer")
    me.groups.add(reviewer_group)
    others = [User.objects.create_user(f"other-{i}") for i in range(5)]
    for user in others:
        user.groups.add(reviewer_group)
    agents = [
        Agent.objects.create(name=f"agent-{i}", base_url="http://127.0.0.1:9/v1", model="bench")
        for i in range(2)
    ]

    now = timezone.now()
    context = list(range(1, 501))  # ids of a short context; pages never load them
    candidates = []
    for s in range(-(-n_candidates // RESPONSES_PER_SNAPSHOT)):
        agent = agents[s % len(agents)]
        snapshot = Snapshot.objects.create(
            agent=agent, taken_at=now - timedelta(minutes=s), source=Snapshot.Source.API
        )
        nodes = []
        for i in range(RESPONSES_PER_SNAPSHOT * 2):
            role = "assistant" if i % 2 else "user"
            nodes.append(Node(snapshot=snapshot, section=Section.CONVERSATION, index=i, role=role,
                              text=f"{role} turn {i} of snapshot {s}: " + "words " * 40,
                              timestamp=now - timedelta(minutes=s, seconds=-i), token_ids=[1, 2, 3],
                              n_tokens=3))
        Node.objects.bulk_create(nodes)
        for node in Node.objects.filter(snapshot=snapshot, role="assistant"):
            if len(candidates) == n_candidates:
                break
            candidates.append(Candidate(
                agent=agent, snapshot=snapshot, response=node,
                response_key=f"{snapshot.pk}:{node.index}",
                divergence=round(rng.uniform(1.0, 20.0), 3), response_text=node.text,
                context_ids=context, continuation_ids=[7, 8, 9],
                alternate_text="an alternate " * 30, alternate_status=Candidate.AlternateStatus.DONE,
            ))
    Candidate.objects.bulk_create(candidates, batch_size=1000)

    ids = list(Candidate.objects.values_list("pk", flat=True))
    reviews = []
    for pk in rng.sample(ids, len(ids) // 5):
        reviews.append(Review(candidate_id=pk, reviewer=rng.choice(others),
                              decision=rng.choice(["approve", "skip"])))
    Review.objects.bulk_create(reviews, batch_size=1000)
    held = rng.sample(ids, 50)
    Candidate.objects.filter(pk__in=held).update(
        reserved_by=others[0], reserved_until=now + timedelta(hours=1)
    )
    approved = rng.sample(ids, len(ids) // 10)
    Candidate.objects.filter(pk__in=approved).exclude(pk__in=held).update(status="approved")
    return me, agents


def timed(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}")
    return elapsed, len(queries.captured_queries), response


def report(name, samples, queries):
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    median = statistics.median(ordered)
    spread = f"{min(queries)}" if min(queries) == max(queries) else f"{min(queries)}-{max(queries)}"
    print(f"{name:<16} median {median * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
          f"({len(samples)} requests, {spread} queries each)")
    return p95


def main():
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="memscore-bench-") as tmp:
        setup_django(tmp, args.database_url)
        from django.test.utils import setup_test_environment

        setup_test_environment()  # lets the test client's "testserver" host in
        from django.conf import settings
        from django.test import Client
        from django.urls import reverse

        started = time.perf_counter()
        me, agents = build(args.candidates)
        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        print(f"built {args.candidates} candidates on {engine} in {time.perf_counter() - started:.1f}s")

        client = Client()
        client.force_login(me)
        queue_url = reverse("review_queue")
        client.get(queue_url)  # warm up templates and connections

        rng = random.Random(11)
        queue_times, queue_queries = [], []
        for i in range(args.requests):
            url = queue_url if i % 3 else f"{queue_url}?agent={agents[i % 2].pk}"
            elapsed, n, response = timed(client, url)
            queue_times.append(elapsed)
            queue_queries.append(n)
            candidate = response.context["candidate"]
            # Decide what was shown (not timed), so the next request takes a new one.
            candidate.decide(me, rng.choice(["approve", "skip", "approve"]))

        list_times, list_queries = [], []
        list_url = reverse("candidate_list")
        pages = args.candidates // 50
        for i in range(args.requests):
            params = [f"page={rng.randint(1, max(1, pages // 4))}"]
            if i % 2:
                params.append(f"agent={agents[i % 4 // 2].pk}")
            if i % 3 == 0:
                params.append("status=pending")
            elapsed, n, _ = timed(client, f"{list_url}?{'&'.join(params)}")
            list_times.append(elapsed)
            list_queries.append(n)

        worst = max(
            report("review queue", queue_times, queue_queries),
            report("candidate list", list_times, list_queries),
        )
        if worst > TARGET_P95_SECONDS:
            print(f"FAIL: a 95th percentile is over {TARGET_P95_SECONDS * 1000:.0f} ms")
            return 1
        print(f"ok: both 95th percentiles under {TARGET_P95_SECONDS * 1000:.0f} ms")
        return 0


if __name__ == "__main__":
    sys.exit(main())
