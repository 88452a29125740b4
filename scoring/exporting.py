"""The approved samples as JSON lines, with where each came from: what the
candidates' export page (/candidates/export.jsonl) and `manage.py
export_samples` both give, line for line."""

import json

from django.db.models import Prefetch

from scoring.models import Candidate, Review, TrainSample


def approved_samples(agent=None):
    """Approved and trained candidates (of `agent`, or of every agent), in
    export order, with what their lines read fetched along."""
    candidates = (
        Candidate.objects.filter(status__in=[Candidate.Status.APPROVED, Candidate.Status.TRAINED])
        .select_related("agent", "snapshot", "edited_by")
        .prefetch_related(
            Prefetch("reviews", queryset=Review.objects.select_related("reviewer").order_by("created_at")),
            Prefetch(
                "samples",
                queryset=TrainSample.objects.filter(live=True).select_related("job"),
                to_attr="live_samples",
            ),
        )
        .order_by("agent_id", "id")
    )
    return candidates if agent is None else candidates.filter(agent=agent)


def jsonl_lines(candidates):
    """One JSON line (ending in a newline) per candidate of approved_samples()."""
    return (json.dumps(export_line(c)) + "\n" for c in candidates.iterator(chunk_size=200))


def export_line(c):
    sample = c.live_samples[0] if c.live_samples else None
    return {
        # What was (or will be) sent: the job's own copy once there is one.
        "context_ids": sample.context_ids if sample else c.context_ids,
        "continuation_ids": sample.continuation_ids if sample else c.training_continuation_ids,
        "text": c.training_text,
        "original_text": c.response_text,
        "edited": c.is_edited,
        # What context_ids hold before the response: "as_scored" (the memories
        # included) or "without_memories" (the agent's "Samples' context").
        "context": c.training_context,
        "provenance": {
            "candidate_id": c.pk,
            "agent": c.agent.name,
            "snapshot_id": c.snapshot_id,
            "taken_at": c.snapshot.taken_at.isoformat(),
            "run_id": c.run_id,
            "response_key": c.response_key,
            "divergence": c.divergence,
            "status": c.status,
            "reviewers": [
                {
                    "reviewer": r.reviewer.get_username(),
                    "decision": r.decision,
                    "comment": r.comment,
                    "at": r.updated_at.isoformat(),
                    # An approval of the text above, or of an earlier one (before an edit).
                    "of_this_text": c.counts_toward(r) if r.decision == Review.Decision.APPROVE else None,
                }
                for r in c.reviews.all()
            ],
            "edited_by": c.edited_by.get_username() if c.edited_by else None,
            "edited_at": c.edited_at.isoformat() if c.edited_at else None,
            "train_job": str(sample.job_id) if sample else None,
            "train_job_status": sample.job.status if sample else None,
            "server_job_id": (sample.job.server_job_id or None) if sample else None,
        },
    }
