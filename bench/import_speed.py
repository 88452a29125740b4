"""How long a big snapshot takes to import: 2,000 responses, 500 memories, ~200k tokens.

    .venv/bin/python bench/import_speed.py

Every node carries its token ids (as a real agent sends them), so this
measures validation and the one-transaction bulk write, not the server. Runs
on a throwaway SQLite database, or on BENCH_DATABASE_URL (a scratch database:
it is migrated and written to). Exits non-zero past LIMIT_SECONDS.
"""

import os
import random
import sys
import tempfile
import time

from scratch import setup_django

LIMIT_SECONDS = 10.0
RESPONSES, MEMORIES = 2000, 500


def big_snapshot(seed=7):
    rng = random.Random(seed)

    def ids(n):
        return [0, *(rng.randrange(258, 30000) for _ in range(n - 2)), 1]

    conversation = []
    for i in range(RESPONSES):
        minute = f"2026-11-{1 + i // 100:02d}T{(i // 4) % 24:02d}:{i % 60:02d}"
        conversation.append({"role": "user", "text": f"question {i}", "timestamp": minute + ":00Z",
                             "token_ids": ids(rng.randrange(10, 30))})
        # Each of the 500 keys surfaces four times over the conversation.
        conversation.append({"memory": f"topic/{i % MEMORIES}", "text": f"note about topic {i % MEMORIES}",
                             "timestamp": minute + ":01Z", "token_ids": ids(rng.randrange(20, 40))})
        conversation.append({"role": "assistant", "text": f"answer {i}", "timestamp": minute + ":09Z",
                             "token_ids": ids(rng.randrange(40, 60))})
    return {
        "agent": "bench",
        "taken_at": "2026-11-20T12:00:00Z",
        "system": [{"role": "system", "text": "You are a benchmark.", "token_ids": ids(400)}],
        "identity": [{"memory": f"identity/{k}", "text": "who I am", "token_ids": ids(200)} for k in range(3)],
        "journal": [{"role": "system", "text": "journal", "token_ids": ids(300)}],
        "conversation": conversation,
    }


def main():
    setup_django(tempfile.mkdtemp(prefix="memscore-bench-"), os.environ.get("BENCH_DATABASE_URL"))
    from scoring.importing import import_snapshot, validate_snapshot
    from scoring.models import Agent, Snapshot

    Agent.objects.filter(name="bench").delete()
    agent = Agent.objects.create(name="bench", base_url="http://127.0.0.1:9/v1", model="none")
    doc = big_snapshot()

    started = time.perf_counter()
    validate_snapshot(doc, agent=agent)
    validated = time.perf_counter() - started

    started = time.perf_counter()
    snapshot = import_snapshot(agent, doc, source=Snapshot.Source.CLI, actor_name="bench")
    first = time.perf_counter() - started

    # A second snapshot of the same agent: every memory already exists (the upsert path).
    doc["taken_at"] = "2026-11-21T12:00:00Z"
    started = time.perf_counter()
    import_snapshot(agent, doc, source=Snapshot.Source.CLI, actor_name="bench")
    second = time.perf_counter() - started

    from django.db import connection

    engine = connection.vendor
    print(
        f"import_speed ({engine}): {snapshot.node_count} nodes, {snapshot.memory_count} memories, "
        f"{snapshot.response_count} responses, {snapshot.token_count} tokens\n"
        f"  validation alone      {validated:6.2f} s\n"
        f"  first import          {first:6.2f} s\n"
        f"  re-import (upserts)   {second:6.2f} s"
    )
    Agent.objects.filter(pk=agent.pk).delete()
    if max(first, second) > LIMIT_SECONDS:
        sys.exit(f"too slow: an import took more than {LIMIT_SECONDS:g} s")


if __name__ == "__main__":
    main()
