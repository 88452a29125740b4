"""Incremental mode: a memory's new score from its window, folded into its weight."""

from scoring.models import MemoryScore


def window_score(baseline, without):
    """The memory's score over its window: the largest divergence, as in the reference."""
    return max((max(0.0, b - w) for b, w in zip(baseline, without)), default=0.0)


def record(run, call, baseline):
    """Fold a finished pair's score into the memory's weight (once per run)."""
    score = window_score(baseline.result, call.result)
    call.memory.record_score(score, run=run, responses=len(call.result), alpha=run.agent.weight_alpha)


def summary(run, notes):
    scored = [
        {"key": key, "score": score, "weight": weight, "responses": responses}
        for key, score, weight, responses in MemoryScore.objects.filter(run=run)
        .order_by("id")
        .values_list("memory__key", "score", "weight", "responses")
    ]
    return {"scored": scored, "skipped": notes.get("skipped", [])}
