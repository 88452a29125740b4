"""Incremental: the memories due for scoring, each over its own window of
responses, the score folded into the memory's weight (what beat runs)."""

from bisect import bisect_left

from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from scoring import maths
from scoring.models import Memory, MemoryScore, Node, ScoreCall
from scoring.models.runs import BASELINE_FAILED, Mode, RunStatus

from .base import CallSpec, Filter, ParamsForm, Plan, ScoringMode, memories, whole_number

# A memory past this share of the conversation's tokens has too few responses
# after it to judge yet, as a fraction 3/5 = 60%.
CUTOFF = (3, 5)
CUTOFF_PERCENT = 100 * CUTOFF[0] // CUTOFF[1]
PAST_CUTOFF = f"past {CUTOFF_PERCENT}% of the conversation"


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
    # Lists each memory: its window, score and weight, or why it was skipped or failed.
    detail_template = "scoring/_incremental_detail.html"
    result_labels = {"scored": "Memories scored", "skipped": "Memories skipped",
                     "failed": "Memories not scored (a call failed)"}
    unshown_when_none = ("failed",)

    def page_note(self, snapshot):
        agent, limit = snapshot.agent, snapshot.agent.incremental_batch
        return (f"Scores each due memory (never scored, or not within the max age) over its own window: from where "
                f"it first appears through the next response-window responses, leaving out the conversation "
                f"before it (so not a full matrix's numbers). 2 calls per memory: at most twice the number in "
                f"Memories at most (left blank, this agent's {limit}: {2 * limit} calls). Memories first "
                f"appearing past {CUTOFF_PERCENT}% of the conversation's tokens, or with no response after them, "
                f"are skipped at no cost. Each "
                f"score, the largest divergence in the window, feeds the memory's weight, a moving average "
                f"(α {agent.weight_alpha:g}).")

    def detail_context(self, run):
        return {"memories": memory_rows(run)}

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
        rows = memory_rows(run)
        scored = [{k: row[k] for k in ("key", "score", "weight_before", "weight", "responses")}
                  for row in rows if row["state"] == "scored"]
        failed = [{"key": row["key"], "reason": row["reason"]} for row in rows if row["state"] == "failed"]
        return {"scored": scored, "skipped": (run.result or {}).get("skipped", []), "failed": failed}

    def report(self, run, write):
        result = run.result or {}
        for s in result.get("scored", []):
            before = s.get("weight_before")
            write(f"{s['key']}: score {s['score']:.3f}, weight "
                  + (f"{before:.3f} -> {s['weight']:.3f}" if before is not None else f"{s['weight']:.3f} (first)"))
        for s in result.get("failed", []):
            write(f"{s['key']}: not scored ({s['reason']})")
        for s in result.get("skipped", []):
            write(f"{s['key']}: skipped ({s['reason']})")


def memory_rows(run):
    """Each memory of the run, in the order it was planned: its window (first
    and last response number, as the heatmap numbers them), then what became
    of it: state "scored" (score, weight before and after), "failed" or
    "waiting" (reason), or "skipped" (reason, no window)."""
    # The weight before is the memory's previous history entry's: record_score
    # folds under the memory's row lock, so ids follow the order of the folds.
    previous = MemoryScore.objects.filter(memory=OuterRef("memory"), id__lt=OuterRef("id")).order_by("-id")
    entries = {
        e.memory_id: e for e in MemoryScore.objects.filter(run=run).annotate(
            weight_before=Subquery(previous.values("weight")[:1]))
    }
    calls = list(ScoreCall.objects.filter(run=run, filter=Filter.SKIP_KEY).select_related("memory", "baseline")
                 .order_by("seq"))
    responses = list(Node.objects.responses().filter(snapshot_id=run.snapshot_id).order_by("index")
                     .values_list("index", flat=True))
    rows = []
    for call in calls:
        # Response numbers: the first after the window's start, through the last before its end.
        first, last = bisect_left(responses, call.range_start) + 1, bisect_left(responses, call.range_end)
        row = {"key": call.memory.key, "first_response": first, "last_response": last}
        entry = entries.get(call.memory_id)
        if entry is not None:
            row.update(state="scored", score=entry.score, weight_before=entry.weight_before, weight=entry.weight,
                       responses=entry.responses)
        elif call.status == ScoreCall.Status.FAILED or call.baseline.status == ScoreCall.Status.FAILED:
            row.update(state="failed", reason=_failure(call))
        elif run.status == RunStatus.CANCELLED:
            row.update(state="waiting", reason="not scored: the run was cancelled first")
        else:
            row.update(state="waiting", reason="not scored yet")
        rows.append(row)
    skipped = (run.result or {}).get("skipped", [])
    rows += [{"key": s["key"], "state": "skipped", "reason": s["reason"]} for s in skipped]
    return rows


def _failure(call):
    """Why a memory's pair of calls gave no score: its own call's error, or its baseline's."""
    if call.baseline.status == ScoreCall.Status.FAILED and (call.error in ("", BASELINE_FAILED)):
        return f"{BASELINE_FAILED}: {call.baseline.error or 'no message'}"
    return call.error or "its call failed (no message)"


MODE = IncrementalMode()
