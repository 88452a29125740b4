"""Finished full-matrix runs built straight in the database, for page tests and the bench.

`matrix_run(agent, deltas)` writes a snapshot whose identity section holds one
memory node per row and whose conversation alternates user / assistant, the
run's leave-one-out calls (what load_matrix reads the layout from) and one
CellScore per cell. A cell given as FAILED is stored failed; one given as
UNAFFECTED is stored as an exact 0 before its memory ("unaffected"); one
given as MISSING is not stored at all (not scored yet). Cells go in with executemany
so 1,000,000 of them take seconds, not minutes.
"""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from scoring.models import CellScore, Memory, Node, ScoreCall, ScoringRun, Section, Snapshot
from scoring.models.runs import Mode, RunStatus

FAILED = "failed"
MISSING = "missing"
UNAFFECTED = "unaffected"


def matrix_run(agent, deltas, *, keys=None, memory_texts=None, responses=None,
               status=RunStatus.SUCCEEDED, by=None, finished=True):
    """A run over len(deltas) memories × len(deltas[0]) responses; returns it.

    Memories are keyed `keys[i]` (default "mem/NNNN") and reused if the agent
    already has them; responses get `responses[j]` as text. Long because it
    writes every table a finished run touches, in order, in one place.
    """
    n_mem, n_resp = len(deltas), len(deltas[0]) if deltas else 0
    keys = keys or [f"mem/{i:04d}" for i in range(n_mem)]
    memory_texts = memory_texts or [f"Memory text {i}." for i in range(n_mem)]
    responses = responses or [f"Response number {j}: the answer." for j in range(n_resp)]
    now = timezone.now()
    with transaction.atomic():
        snapshot = Snapshot.objects.create(
            agent=agent, taken_at=now, source=Snapshot.Source.CLI,
            node_count=n_mem + 2 * n_resp, memory_count=n_mem, response_count=n_resp,
        )
        existing = {m.key: m for m in Memory.objects.filter(agent=agent, key__in=keys)}
        Memory.objects.bulk_create(
            [Memory(agent=agent, key=k, text=t) for k, t in zip(keys, memory_texts) if k not in existing]
        )
        memories = {m.key: m for m in Memory.objects.filter(agent=agent, key__in=keys)}
        nodes = [
            Node(snapshot=snapshot, section=Section.IDENTITY, index=i, memory_key=k,
                 memory=memories[k], text=t)
            for i, (k, t) in enumerate(zip(keys, memory_texts))
        ]
        for j, text in enumerate(responses):
            nodes.append(Node(snapshot=snapshot, section=Section.CONVERSATION, index=2 * j,
                              role="user", text=f"Question {j}?"))
            nodes.append(Node(snapshot=snapshot, section=Section.CONVERSATION, index=2 * j + 1,
                              role="assistant", text=text, timestamp=now))
        Node.objects.bulk_create(nodes, batch_size=5000)
        response_ids = list(
            Node.objects.responses().filter(snapshot=snapshot).order_by("index").values_list("id", flat=True)
        )

        failed_calls = sum(1 for row in deltas if failed_call(row))
        run = ScoringRun.objects.create(
            agent=agent, snapshot=snapshot, mode=Mode.FULL, status=status,
            calls_total=n_mem + 1, calls_done=n_mem + 1 - failed_calls if finished else 1,
            calls_failed=failed_calls if finished else 0,
            created_by=by, started_at=now - timedelta(seconds=90),
            finished_at=now if finished else None,
        )
        baseline = ScoreCall.objects.create(
            run=run, seq=0, filter=ScoreCall.Filter.NONE, range_start=0, range_end=2 * n_resp,
            status=ScoreCall.Status.DONE,
        )
        ScoreCall.objects.bulk_create([
            ScoreCall(run=run, seq=i + 1, filter=ScoreCall.Filter.SKIP_KEY, memory=memories[k],
                      range_start=0, range_end=2 * n_resp, baseline=baseline,
                      status=_call_status(row, finished),
                      error="HTTP 500 from /score" if failed_call(row) else "")
            for i, (k, row) in enumerate(zip(keys, deltas))
        ], batch_size=1000)

        rows = []
        for k, row in zip(keys, deltas):
            memory_id = memories[k].pk
            for response_id, value in zip(response_ids, row):
                if value == MISSING:
                    continue
                if value == FAILED:
                    rows.append((run.pk, memory_id, response_id, None, True, "failed"))
                elif value == UNAFFECTED:
                    rows.append((run.pk, memory_id, response_id, 0.0, False, "unaffected"))
                else:
                    rows.append((run.pk, memory_id, response_id, float(value), False, "scored"))
        table = connection.ops.quote_name(CellScore._meta.db_table)
        columns = "(run_id, memory_id, response_id, delta, failed, state)"
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # COPY: executemany would send a million statements.
                with cursor.cursor.copy(f"COPY {table} {columns} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                for start in range(0, len(rows), 50_000):
                    cursor.executemany(
                        f"INSERT INTO {table} {columns} VALUES (%s, %s, %s, %s, %s, %s)",
                        rows[start:start + 50_000],
                    )
    run.memories = [memories[k] for k in keys]
    run.response_ids = response_ids
    return run


def failed_call(row):
    """Whether a row is a failed call's: failed cells, and unaffected ones before its memory."""
    return bool(row) and FAILED in row and all(v in (FAILED, UNAFFECTED) for v in row)


def _call_status(row, finished):
    if failed_call(row):
        return ScoreCall.Status.FAILED
    if row and all(v == MISSING for v in row) or not finished:
        return ScoreCall.Status.PENDING
    return ScoreCall.Status.DONE
