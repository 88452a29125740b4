"""Claims: concurrent claimers each win different calls; lapsed claims are taken over;
a result is stored only by the latest claimer."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scoring.context import snapshot_tokens
from scoring.engine import run_inline, start_run
from scoring.engine.execution import Outcome, claim_calls, renew_claims, store
from scoring.models import ScoreCall, ScoringRun
from tests.conftest import NO_FAULTS
from tests.engine_support import make_snapshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(agent):
    return start_run(make_snapshot(agent, extra_memories=12), "full")


def test_it_gives_each_call_to_exactly_one_of_many_concurrent_claimers(run):
    won, barrier = [], threading.Barrier(8)

    def claimer():
        try:
            barrier.wait()
            while True:
                calls = claim_calls(run.pk, 2, concurrency=1000)
                if not calls:
                    return
                won.extend(c.pk for c in calls)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(won) == sorted(run.calls.values_list("pk", flat=True))
    assert set(run.calls.values_list("status", "attempts")) == {(ScoreCall.Status.RUNNING, 1)}


def test_it_claims_baselines_first_and_within_the_concurrency(run):
    first = claim_calls(run.pk, 3, concurrency=3)

    assert [c.seq for c in first] == [0, 1, 2]
    assert claim_calls(run.pk, 3, concurrency=3) == []  # three in flight already


def test_it_takes_over_a_lapsed_claim_and_ignores_the_old_claimers_result(run):
    call = claim_calls(run.pk, 1, concurrency=1)[0]
    ScoreCall.objects.filter(pk=call.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))

    again = claim_calls(run.pk, 1, concurrency=1)[0]

    assert again.pk == call.pk and again.attempts == 2
    tokens = snapshot_tokens(run.snapshot)
    # The first claimer answers late: its claim was taken over, so nothing is stored.
    assert store(run, [(call, Outcome(result=[0.0] * 13, n_tokens=5))], tokens) == 0
    assert store(run, [(again, Outcome(result=[-1.0] * 13, n_tokens=7))], tokens) == 1
    run.refresh_from_db()
    assert (run.calls_done, run.tokens_scored) == (1, 7)
    assert ScoreCall.objects.get(pk=call.pk).result == [-1.0] * 13


def test_it_does_not_count_calls_whose_answer_is_back_against_the_concurrency(run):
    first = claim_calls(run.pk, 3, concurrency=3)

    # The claimer has the first call's answer but has not stored it yet: the
    # server is working on two calls only, so one more may be sent.
    more = claim_calls(run.pk, 3, concurrency=3, finished=[first[0].pk])

    assert [c.seq for c in more] == [3]
    assert claim_calls(run.pk, 3, concurrency=3, finished=[first[0].pk]) == []


def test_it_holds_its_spare_calls_only_while_alone_on_the_run(run):
    mine = claim_calls(run.pk, 3, concurrency=3)
    held = [c.pk for c in mine]

    spare = claim_calls(run.pk, 3, concurrency=3, held=held, spare=2)

    # Two more than the concurrency, waiting for a thread; no more than that.
    assert [c.seq for c in spare] == [3, 4]
    held += [c.pk for c in spare]
    assert claim_calls(run.pk, 3, concurrency=3, held=held, spare=2) == []
    # Another claimer counts them all as in flight.
    assert claim_calls(run.pk, 3, concurrency=5) == []


def test_it_takes_no_spare_while_another_claimer_holds_a_call(run):
    theirs = claim_calls(run.pk, 1, concurrency=3)
    mine = claim_calls(run.pk, 3, concurrency=3, spare=2)

    # Within the concurrency together, and no spare once another is there.
    assert [c.seq for c in theirs + mine] == [0, 1, 2]
    assert claim_calls(run.pk, 3, concurrency=3, held=[c.pk for c in mine], spare=2) == []
    # Their answer is back and stored: alone again.
    ScoreCall.objects.filter(pk=theirs[0].pk).update(status=ScoreCall.Status.DONE, claimed_until=None)
    assert [c.seq for c in claim_calls(run.pk, 3, concurrency=3, held=[c.pk for c in mine], spare=2)] == [3, 4, 5]


def test_it_ends_the_run_once_when_another_worker_stores_the_last_call(run):
    tokens = snapshot_tokens(run.snapshot)

    def answer(call):
        return Outcome(result=[-1.0] * len(tokens.responses(call.range_start, call.range_end)), n_tokens=1)

    calls = claim_calls(run.pk, 1000, concurrency=1000)
    *early, last = calls
    baselines = {}
    assert store(run, [(c, answer(c)) for c in early], tokens, baselines=baselines) == len(early)
    run.refresh_from_db()
    assert run.is_active
    # The last call's claim lapses; another worker takes it over and stores it.
    ScoreCall.objects.filter(pk=last.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    again = claim_calls(run.pk, 1, concurrency=1)[0]

    assert store(run, [(again, answer(again))], tokens) == 1
    run.refresh_from_db()
    assert run.status == ScoringRun.Status.SUCCEEDED
    assert (run.calls_done, run.calls_failed) == (len(calls), 0)
    assert run.cells.filter(failed=False).count() == (len(calls) - 1) * len(answer(last).result)
    # The first worker's late answer changes nothing.
    assert store(run, [(last, answer(last))], tokens, baselines=baselines) == 0


def test_it_renews_only_the_claims_still_held_under_their_attempt(run, settings):
    settings.MEMSCORE_CLAIM_SECONDS = 60
    mine = claim_calls(run.pk, 2, concurrency=10)
    # The second call lapsed and another worker took it over (a newer attempt).
    ScoreCall.objects.filter(pk=mine[1].pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    theirs = claim_calls(run.pk, 1, concurrency=10)[0]
    assert theirs.pk == mine[1].pk and theirs.attempts == 2
    ScoreCall.objects.filter(pk=mine[0].pk).update(claimed_until=timezone.now() + timedelta(seconds=1))

    assert renew_claims(mine) == 1

    held = ScoreCall.objects.get(pk=mine[0].pk)
    assert held.claimed_until > timezone.now() + timedelta(seconds=50)
    assert ScoreCall.objects.get(pk=theirs.pk).claimed_until == theirs.claimed_until


def test_it_keeps_a_slow_call_claimed_while_the_server_answers(agent, ref, settings):
    # Every call takes longer than a claim lasts: without a heartbeat each
    # would lapse mid-call, be claimed again and answered twice.
    settings.MEMSCORE_CLAIM_SECONDS = 1.2
    ref.control(**{**NO_FAULTS, "latency_ms": 2500})
    run = start_run(make_snapshot(agent), "full")

    run = run_inline(run, threads=2)

    assert run.status == ScoringRun.Status.SUCCEEDED
    assert set(run.calls.values_list("attempts", flat=True)) == {1}
