"""An agent whose training target is none (export only): the outbox makes no
job for it and never posts one, while review and the JSONL export go on."""

import json

import pytest
from candidate_factory import make_approved
from django.urls import reverse

from scoring import outbox
from scoring.models import Agent, Candidate, TrainJob
from scoring.outbox import NoTrainingTarget, send_to_training

REASON = "poc has no training target: approved samples are exported as JSONL."


def export_only(agent):
    agent.training_target = Agent.TrainingTarget.NONE
    agent.save(update_fields=["training_target"])


def statuses(candidates):
    pks = [c.pk for c in candidates]
    return set(Candidate.objects.filter(pk__in=pks).values_list("status", flat=True))


def test_it_refuses_to_make_a_job(cast, agent):
    make_approved(agent, 2)
    export_only(agent)

    with pytest.raises(NoTrainingTarget) as refused:
        send_to_training(agent, cast.operator)

    assert refused.value.messages == [REASON]
    assert not TrainJob.objects.exists()


def test_it_fails_a_job_made_before_the_switch_without_posting_it(cast, agent, ref):
    candidates = make_approved(agent, 2)
    job = send_to_training(agent, cast.operator)
    export_only(agent)
    posts = ref.stats()["train_posts"]

    assert outbox.dispatch(job.pk) == 1

    job.refresh_from_db()
    assert job.status == TrainJob.Status.FAILED
    assert REASON in job.last_error and "training target to /train" in job.last_error
    assert ref.stats()["train_posts"] == posts
    # Free again, so the export has them as approved samples.
    assert not job.samples.filter(live=True).exists()
    assert statuses(candidates) == {"approved"}


def test_it_keeps_a_job_that_may_be_on_the_server_as_unknown(cast, agent, ref):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    # An earlier attempt's outcome was unknown: the server may be training it.
    TrainJob.objects.filter(pk=job.pk).update(status=TrainJob.Status.UNKNOWN, attempts=1)
    export_only(agent)
    posts = ref.stats()["train_posts"]

    outbox.dispatch(job.pk)

    job.refresh_from_db()
    assert job.status == TrainJob.Status.UNKNOWN and job.needs_attention
    assert REASON in job.last_error
    assert job.samples.filter(live=True).count() == 1
    assert ref.stats()["train_posts"] == posts


@pytest.mark.parametrize("status", [TrainJob.Status.FAILED, TrainJob.Status.UNKNOWN])
def test_it_refuses_to_retry(cast, agent, status):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    TrainJob.objects.filter(pk=job.pk).update(status=status)
    job.refresh_from_db()
    export_only(agent)

    with pytest.raises(NoTrainingTarget):
        outbox.retry(job, by=cast.operator)
    assert TrainJob.objects.count() == 1


def test_review_and_the_export_still_work(cast, agent):
    export_only(agent)
    approved = make_approved(agent, 2)

    r = cast.client_for(cast.reviewer).get(reverse("review_queue"))
    assert r.status_code == 200

    r = cast.client_for(cast.viewer).get(reverse("candidate_export") + f"?agent={agent.pk}")
    lines = [json.loads(line) for line in b"".join(r.streaming_content).decode().splitlines()]
    assert sorted(line["provenance"]["candidate_id"] for line in lines) == sorted(c.pk for c in approved)
