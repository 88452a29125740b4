"""Re-scoring after training: did the trained responses' divergence fall?"""

from django.core.exceptions import ValidationError
from django.db import transaction

from scoring.models import Activity, Node, Section, TrainJob
from scoring.models.runs import Mode

from . import start_run


def rescore(job, by):
    """Start a fine-tune run on each snapshot the job's samples came from.

    Each run covers the conversation from the earliest trained response of
    its snapshot to the end, so every sample's response is scored again.
    Returns the runs (the caller enqueues `Followups(runs=...)`);
    ValidationError when the job has not succeeded.
    """
    if job.status != TrainJob.Status.SUCCEEDED:
        raise ValidationError("Re-score after the training succeeded: until then the model has not changed.")
    earliest = {}
    for snapshot_id, index in job.samples.values_list("candidate__snapshot_id", "candidate__response__index"):
        earliest[snapshot_id] = min(index, earliest.get(snapshot_id, index))
    runs = []
    with transaction.atomic():
        for snapshot_id, first_index in sorted(earliest.items()):
            snapshot = job.agent.snapshots.get(pk=snapshot_id)
            entries = Node.objects.filter(snapshot=snapshot, section=Section.CONVERSATION).count()
            params = {"count": entries - first_index, "alternates": False}
            runs.append(start_run(snapshot, Mode.FINETUNE, params=params, by=by))
        job.rescore_runs.add(*runs)
        Activity.record(by, "re-scored", job, runs=[r.pk for r in runs])
    return runs
