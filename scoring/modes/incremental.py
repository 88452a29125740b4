"""Incremental: the memories due for scoring, each over its own window of
responses, the score folded into the memory's weight (what beat runs)."""

from django.core.exceptions import ValidationError
from django.utils import timezone

from scoring import maths
from scoring.models import Memory, MemoryScore
from scoring.models.runs import Mode

from .base import CallSpec, Filter, ParamsForm, Plan, ScoringMode, memories, whole_number

# A memory past this share of the conversation's tokens has too few responses
# after it to judge yet, as a fraction 3/5 = 60%.
CUTOFF = (3, 5)
PAST_CUTOFF = f"past {100 * CUTOFF[0] // CUTOFF[1]}% of the conversation"


def nothing_to_score(skipped):
    """Why a snapshot gives an incremental run nothing to score, in words."""
    if not skipped:
        return "no memory of this snapshot is due for scoring"
    recent = sum(1 for s in skipped if s["reason"] == PAST_CUTOFF)
    after = len(skipped) - recent
    parts = []
    if recent == 1:
        parts.append(f"the one due memory is too recent to score ({PAST_CUTOFF})")
    elif recent:
        parts.append(f"the {recent} due memories are too recent to score ({PAST_CUTOFF})")
    if after == 1:
        parts.append("one due memory has no response after it")
    elif after:
        parts.append(f"{after} due memories have no response after them")
    return "; ".join(parts)


class IncrementalParams(ParamsForm):
    max_age = whole_number(
        0, label="Max age (seconds)", help_text="incremental: re-score after this many seconds"
    )
    response_window = whole_number(1, label="Response window", help_text="incremental: responses per memory")
    limit = whole_number(1, label="Memories at most", help_text="incremental: memories to score at most")
    agent_defaults = {
        "max_age": "incremental_max_age",
        "response_window": "incremental_response_window",
        "limit": "incremental_batch",
    }


class IncrementalMode(ScoringMode):
    name = Mode.INCREMENTAL
    Params = IncrementalParams
    has_heatmap = True
    result_labels = {"scored": "Memories scored", "skipped": "Memories skipped"}

    def plan(self, snapshot, outline, params, now=None):
        now = now or timezone.now()
        keys = outline.keys()
        found = memories(snapshot.agent, keys)
        due_ids = set(
            Memory.objects.filter(pk__in=[m.pk for m in found.values()])
            .due_for_scoring(now, params["max_age"])
            .values_list("pk", flat=True)
        )
        positions = {k: outline.first_position(k) for k in keys}
        due = [found[k] for k in keys if found[k].pk in due_ids]
        # Never scored first, then the longest ago; ties in context order.
        due.sort(key=lambda m: (m.last_scored is not None, m.last_scored or now, positions[m.key]))
        cumulative, total = outline.tokens_through()
        num, den = CUTOFF

        calls, skipped = [], []
        for memory in due:
            if len(calls) // 2 >= params["limit"]:
                break
            pos = positions[memory.key]
            upto = cumulative[pos] if pos < len(cumulative) else total
            if upto * den > total * num:
                skipped.append({"key": memory.key, "reason": PAST_CUTOFF})
                continue
            end = outline.window_end(pos, params["response_window"])
            if not outline.responses_in(pos, end):
                skipped.append({"key": memory.key, "reason": "no response after it"})
                continue
            calls.append(CallSpec(Filter.NONE, pos, end))
            calls.append(CallSpec(Filter.SKIP_KEY, pos, end, memory=memory, baseline=len(calls) - 1))
        if not calls:
            raise ValidationError({"snapshot": nothing_to_score(skipped)})
        return Plan(params, calls, {"skipped": skipped})

    def settle(self, run, call, baseline, tokens):
        """Fold the pair's score into the memory's weight (once per run)."""
        score = maths.window_score(baseline.result, call.result)
        call.memory.record_score(score, run=run, responses=len(call.result), alpha=run.agent.weight_alpha)

    def summary(self, run):
        scored = [
            {"key": key, "score": score, "weight": weight, "responses": responses}
            for key, score, weight, responses in MemoryScore.objects.filter(run=run)
            .order_by("id")
            .values_list("memory__key", "score", "weight", "responses")
        ]
        return {"scored": scored, "skipped": (run.result or {}).get("skipped", [])}

    def report(self, run, write):
        result = run.result or {}
        for s in result.get("scored", []):
            write(f"{s['key']}: score {s['score']:.3f}, weight {s['weight']:.3f}")
        for s in result.get("skipped", []):
            write(f"{s['key']}: skipped ({s['reason']})")


MODE = IncrementalMode()
