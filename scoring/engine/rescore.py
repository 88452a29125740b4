"""Re-scoring after training: did the trained responses' divergence fall?

rescore() starts the runs; samples_with_rescore() and training_effect() read
what they found, for the training pages and the home page.
"""

from statistics import fmean

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Min

from scoring.models import Activity, Node, ScoreCall, ScoringRun, Section, TrainJob
from scoring.models.runs import Mode, RunStatus
from scoring.modes.finetune import response_divergences

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
    ranges = {}
    # Once per finding run (two queries), not per sample.
    for snapshot_id, run_id in job.samples.values_list("candidate__snapshot_id", "candidate__run_id").distinct():
        start, count = _found_range(run_id)
        ranges.setdefault((snapshot_id, start), count)
    runs = []
    with transaction.atomic():
        for (snapshot_id, start), count in sorted(ranges.items()):
            snapshot = job.agent.snapshots.get(pk=snapshot_id)
            entries = Node.objects.filter(snapshot=snapshot, section=Section.CONVERSATION).count()
            # The finding run's own count where there is one, so the two run
            # pages read alike ("Last entries 200" of a 30-entry conversation).
            params = {"count": count or entries - start, "alternates": False, "make_candidates": False}
            runs.append(start_run(snapshot, Mode.FINETUNE, params=params, by=by))
        job.rescore_runs.add(*runs)
        Activity.record(by, "re-scored", job, runs=[r.pk for r in runs])
    return runs


def _found_range(run_id):
    """(where in the conversation the run that found a candidate started, its
    count parameter); (0, None), the whole conversation, when that run is gone."""
    start = ScoreCall.objects.filter(run_id=run_id).aggregate(start=Min("range_start"))["start"]
    run = ScoringRun.objects.filter(pk=run_id).only("params").first()
    return start or 0, run.params.get("count") if run is not None else None


def samples_with_rescore(job):
    """The job's samples, each with its response's divergence in the latest
    finished re-score run (None until there is one) and that run's id."""
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
        sample.divergence_after, sample.rescored_by = after.get(sample.candidate.response_id, (None, None))
        sample.change = (
            None if sample.divergence_after is None
            else sample.divergence_after - sample.candidate.divergence
        )
    return samples


def rescored_divergences(job):
    """{response node id: (divergence, run id)} from the job's finished
    re-score runs (a later run wins): finetune.response_divergences."""
    runs = job.rescore_runs.filter(status__in=[RunStatus.SUCCEEDED, RunStatus.PARTIAL]).order_by("created_at")
    found = {}
    for run in runs:
        found.update({node.pk: (divergence, run.pk) for node, divergence in response_divergences(run)})
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
