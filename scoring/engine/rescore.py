"""Re-scoring after training: did the trained responses' divergence fall?

rescore() starts the runs; samples_with_rescore() and training_effect() read
what they found, for the training pages and the home page.
"""

from statistics import fmean

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Min

from scoring import maths
from scoring.models import Activity, Node, ScoreCall, Section, TrainJob
from scoring.models.runs import Mode, RunStatus

from . import start_run


def rescore(job, by):
    """Start measure-only fine-tune runs on the snapshots the job's samples came from.

    A sample's divergence "before" is its candidate's, measured by the run
    that found it over that run's range of the conversation; "after" is
    measured over the same range (a shorter one would leave out the turns
    and memories before it, and change what is compared). One run per
    snapshot and range, usually one per snapshot. The runs make no
    candidates (params "candidates": off): re-scoring measures the trained
    model and leaves the review queue as it is.
    Returns the runs (the caller enqueues `Followups(runs=...)`);
    ValidationError when the job has not succeeded.
    """
    if job.status != TrainJob.Status.SUCCEEDED:
        raise ValidationError("Re-score after the training succeeded: until then the model has not changed.")
    ranges = set()
    for snapshot_id, run_id in job.samples.values_list("candidate__snapshot_id", "candidate__run_id"):
        ranges.add((snapshot_id, _range_start(run_id)))
    runs = []
    with transaction.atomic():
        for snapshot_id, start in sorted(ranges):
            snapshot = job.agent.snapshots.get(pk=snapshot_id)
            entries = Node.objects.filter(snapshot=snapshot, section=Section.CONVERSATION).count()
            params = {"count": entries - start, "alternates": False, "candidates": False}
            runs.append(start_run(snapshot, Mode.FINETUNE, params=params, by=by))
        job.rescore_runs.add(*runs)
        Activity.record(by, "re-scored", job, runs=[r.pk for r in runs])
    return runs


def _range_start(run_id):
    """Where in the conversation the run that found a candidate started
    (0, the whole conversation, when that run is gone)."""
    start = ScoreCall.objects.filter(run_id=run_id).aggregate(start=Min("range_start"))["start"]
    return start or 0


def samples_with_rescore(job):
    """The job's samples, each with its response's divergence in the latest
    finished re-score run (None until there is one)."""
    samples = list(
        job.samples.select_related("candidate", "candidate__snapshot")
        # The id lists are whole contexts; the page needs none of them.
        .defer(
            "context_ids", "continuation_ids", "candidate__context_ids",
            "candidate__continuation_ids", "candidate__edited_ids",
        )
        .order_by("id")
    )
    after = rescored_divergences(job)
    for sample in samples:
        sample.divergence_after = after.get(sample.candidate.response_id)
        sample.change = (
            None if sample.divergence_after is None
            else sample.divergence_after - sample.candidate.divergence
        )
    return samples


def rescored_divergences(job):
    """{response node id: divergence} from the job's finished re-score runs
    (a later run wins): maths.divergences of the baseline and the call
    without any memory."""
    runs = job.rescore_runs.filter(status__in=[RunStatus.SUCCEEDED, RunStatus.PARTIAL]).order_by("created_at")
    calls = ScoreCall.objects.filter(
        run__in=runs, status=ScoreCall.Status.DONE,
        filter__in=[ScoreCall.Filter.NONE, ScoreCall.Filter.SKIP_ALL],
    ).select_related("run").order_by("run__created_at", "seq")
    by_run = {}
    for call in calls:
        by_run.setdefault(call.run_id, {})[call.filter] = call
    found = {}
    for pair in by_run.values():
        base, without = pair.get(ScoreCall.Filter.NONE), pair.get(ScoreCall.Filter.SKIP_ALL)
        if base is None or without is None:
            continue
        responses = Node.objects.responses().filter(
            snapshot_id=base.run.snapshot_id, index__gte=base.range_start, index__lt=base.range_end
        ).order_by("index").values_list("pk", flat=True)
        found.update(zip(responses, maths.divergences(base.result or [], without.result or [])))
    return found


def training_effect(samples):
    """The samples' mean divergence before training and after the latest
    re-score, over those re-scored; None until one is."""
    rescored = [s for s in samples if s.divergence_after is not None]
    if not rescored:
        return None
    before = fmean(s.candidate.divergence for s in rescored)
    after = fmean(s.divergence_after for s in rescored)
    return {"rescored": len(rescored), "samples": len(samples), "before": before, "after": after,
            "change": after - before}
