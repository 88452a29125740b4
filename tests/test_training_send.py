"""send_to_training: the outbox row, double clicks, concurrent senders, the broker down."""

import logging
import time

import pytest
from candidate_factory import make_approved, make_candidate, on_sqlite, run_in_threads
from django.contrib.auth.models import User
from django.db import transaction

from memscore_site.celery import app as celery_app
from scoring import outbox
from scoring.editing import edit_and_approve
from scoring.followups import Followups
from scoring.models import Activity, Agent, Candidate, TrainJob, TrainSample
from scoring.outbox import send_to_training
from scoring.tasks.enqueue import enqueue_on_commit
from scoring.tasks.training import dispatch_train_jobs

postgres_only = pytest.mark.skipif(
    on_sqlite(), reason="concurrent senders need PostgreSQL's row locks (CI runs it there)"
)


def test_it_puts_approved_candidates_in_one_job(cast, agent):
    approved = make_approved(agent, 3)
    pending = make_candidate(agent)
    rejected = make_candidate(agent, status=Candidate.Status.REJECTED)
    edit_and_approve(approved[0], cast.reviewer, "A corrected answer about the garden.")
    approved[0].refresh_from_db()

    job = send_to_training(agent, cast.operator)

    assert job.status == TrainJob.Status.PENDING
    assert job.created_by == cast.operator
    samples = {s.candidate_id: s for s in job.samples.all()}
    assert set(samples) == {c.pk for c in approved}
    assert pending.pk not in samples and rejected.pk not in samples
    for c in approved:
        assert samples[c.pk].context_ids == c.context_ids
        assert samples[c.pk].continuation_ids == c.training_continuation_ids
        assert samples[c.pk].live
    assert samples[approved[0].pk].continuation_ids == approved[0].edited_ids
    # Trained only once the server accepts the job.
    assert set(Candidate.objects.filter(pk__in=samples).values_list("status", flat=True)) == {"approved"}
    record = Activity.objects.get(verb="sent to training")
    assert record.actor == cast.operator and record.detail["candidates"] == sorted(samples)


def test_it_sends_nothing_twice_on_a_double_click(cast, agent):
    make_approved(agent, 2)
    first = send_to_training(agent, cast.operator)
    second = send_to_training(agent, cast.operator)
    assert first is not None and second is None
    assert TrainJob.objects.count() == 1
    assert TrainSample.objects.count() == 2


def test_it_returns_none_with_nothing_approved(cast, agent):
    make_candidate(agent)
    assert send_to_training(agent, cast.operator) is None
    assert not TrainJob.objects.exists()
    assert not Activity.objects.filter(verb="sent to training").exists()


def test_it_sends_only_the_chosen_candidates(cast, agent):
    a, b, c = make_approved(agent, 3)
    job = send_to_training(agent, cast.operator, candidate_ids=[a.pk, c.pk])
    assert set(job.samples.values_list("candidate_id", flat=True)) == {a.pk, c.pk}
    rest = send_to_training(agent, cast.operator)
    assert list(rest.samples.values_list("candidate_id", flat=True)) == [b.pk]


def test_it_keeps_agents_apart(cast, agent, ref):
    other = Agent.objects.create(name="other", base_url=ref.base_url, model="memscore-ref")
    mine = make_approved(agent, 1)
    make_approved(other, 2)
    job = send_to_training(agent, cast.operator)
    assert list(job.samples.values_list("candidate_id", flat=True)) == [mine[0].pk]


@pytest.mark.django_db(transaction=True)
def test_it_commits_the_job_when_the_broker_is_down(ref, caplog):
    agent = Agent.objects.create(name="poc", base_url=ref.base_url, model="memscore-ref")
    operator = User.objects.create_user("otto")
    candidates = make_approved(agent, 2)
    posts_before = ref.stats()["train_posts"]

    with broker_at_closed_port():
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="scoring.tasks.enqueue"):
            # As the send page does: the job, then the dispatcher's nudge on commit.
            with transaction.atomic():
                job = send_to_training(agent, operator)
                enqueue_on_commit(Followups(train_jobs=[job.pk]))
        assert time.monotonic() - started < 10

    assert "periodic dispatcher will send it" in caplog.text
    job = TrainJob.objects.get(pk=job.pk)  # committed, whatever the broker said
    assert job.status == TrainJob.Status.PENDING
    assert job.samples.count() == 2
    assert ref.stats()["train_posts"] == posts_before

    # The next beat tick of the dispatcher sends it.
    dispatch_train_jobs()
    job.refresh_from_db()
    assert job.status == TrainJob.Status.QUEUED and job.server_job_id
    assert ref.stats()["train_posts"] == posts_before + 1
    statuses = Candidate.objects.filter(pk__in=[c.pk for c in candidates]).values_list("status", flat=True)
    assert set(statuses) == {"trained"}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_it_sends_each_candidate_once_with_concurrent_senders_and_dispatchers(ref):
    agent = Agent.objects.create(name="poc", base_url=ref.base_url, model="memscore-ref")
    operators = [User.objects.create_user(f"op{i}") for i in range(6)]
    candidates = make_approved(agent, 40)
    ids = [c.pk for c in candidates]
    posts_before = ref.stats()["train_posts"]
    jobs_before = sum(ref.stats()["jobs"].values())

    def sender(i):
        # Overlapping subsets: every candidate is wanted by several senders.
        return send_to_training(agent, operators[i], candidate_ids=ids[i * 4 : i * 4 + 12])

    sent = run_in_threads(len(operators), sender)
    assert not [s for s in sent if isinstance(s, Exception)], sent

    per_candidate = {}
    for sample in TrainSample.objects.filter(live=True):
        per_candidate.setdefault(sample.candidate_id, []).append(sample.job_id)
    assert all(len(jobs) == 1 for jobs in per_candidate.values()), per_candidate
    wanted = set(ids[: 5 * 4 + 12])
    assert set(per_candidate) == wanted

    # A second wave: senders race for the rest while dispatchers send.
    def dispatcher(i):
        if i % 2:
            return send_to_training(agent, operators[i])
        return outbox.dispatch()

    again = run_in_threads(6, dispatcher)
    assert not [r for r in again if isinstance(r, Exception)], again
    leftovers = {s.pk for s in again if isinstance(s, TrainJob)}
    outbox.dispatch()

    jobs = TrainJob.objects.all()
    assert set(jobs.values_list("status", flat=True)) == {TrainJob.Status.QUEUED}
    assert jobs.count() == len([s for s in sent if s]) + len(leftovers)
    assert ref.stats()["train_posts"] - posts_before == jobs.count()
    assert sum(ref.stats()["jobs"].values()) - jobs_before == jobs.count()
    assert set(Candidate.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"trained"}
    assert TrainSample.objects.filter(live=True).count() == len(ids)


class broker_at_closed_port:
    """Point the Celery app's broker at a port nothing listens on, then back."""

    def __enter__(self):
        self.saved = celery_app.conf.broker_url
        celery_app.conf.broker_url = "redis://127.0.0.1:9/0"
        self._drop_pools()

    def __exit__(self, *exc):
        celery_app.conf.broker_url = self.saved
        self._drop_pools()

    @staticmethod
    def _drop_pools():
        # Celery caches its connection and producer pools on first use.
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
