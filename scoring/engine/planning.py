"""Turning a mode and its parameters into the ScoreCall rows of a run.

Every call scores a conversation range with a filter; a call with a baseline
is compared with it. Planning reads only the snapshot's outline (no token
ids), so starting a run from a page stays quick.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone

from scoring.models import Memory, Node, ScoreCall, Section
from scoring.models.runs import Mode

from .tokens import Entry

Filter = ScoreCall.Filter

# The reference scores one memory over the 50 responses after it appears.
MEMORY_RESPONSE_WINDOW = 50
# A memory past this share of the conversation's tokens has too few responses
# after it to judge yet (incremental mode), as a fraction 3/5 = 60%.
INCREMENTAL_CUTOFF = (3, 5)


@dataclass
class CallSpec:
    filter: str
    range_start: int
    range_end: int
    memory: Memory = None
    # Index in the plan of the call this one is compared with (None: a baseline).
    baseline: int = None


@dataclass
class Plan:
    params: dict
    calls: list
    # Written to ScoringRun.result up front (e.g. what incremental skipped).
    notes: dict


class Outline:
    """What planning needs of a snapshot: entries and memory keys, no ids."""

    def __init__(self, snapshot):
        rows = Node.objects.filter(
            snapshot=snapshot, section__in=[Section.IDENTITY, Section.CONVERSATION]
        ).values_list("section", "index", "id", "role", "memory_key", "n_tokens")
        identity, conversation = [], []
        for section, index, node_id, role, key, n_tokens in sorted(rows, key=lambda r: r[1]):
            entry = Entry(index=index, node_id=node_id, role=role, memory_key=key, n_tokens=n_tokens)
            (identity if section == Section.IDENTITY else conversation).append(entry)
        self.identity_keys = [e.memory_key for e in identity if e.memory_key]
        self.entries = conversation

    def keys(self):
        """Memory keys of identity then conversation, each once, in order of first appearance."""
        return list(dict.fromkeys(self.identity_keys + [e.memory_key for e in self.entries if e.memory_key]))

    def first_position(self, key, *, identity_first=True):
        """Conversation index where the key first appears; identity memories count as 0.

        identity_first=False prefers the conversation's first appearance and
        counts only an identity-only memory as 0 (one-memory mode).
        """
        in_identity = key in self.identity_keys
        if in_identity and identity_first:
            return 0
        for e in self.entries:
            if e.memory_key == key:
                return e.index
        return 0 if in_identity else None

    def window_end(self, start, n):
        """End (exclusive) of the range from start through the nth response after it."""
        seen = 0
        for e in self.entries[start:]:
            if e.is_response:
                seen += 1
                if seen >= n:
                    return e.index + 1
        return len(self.entries)

    def responses_in(self, start, end):
        return sum(1 for e in self.entries[start:end] if e.is_response)


# --- parameters -----------------------------------------------------------------


def _int(params, name, default, minimum):
    value = params.get(name, default)
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise ValidationError({name: f"must be a whole number, not {value!r}"}) from None
    if value < minimum:
        raise ValidationError({name: f"must be at least {minimum}"})
    return value


def _float(params, name, default, minimum):
    value = params.get(name, default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValidationError({name: f"must be a number, not {value!r}"}) from None
    if not value >= minimum:  # also rejects NaN
        raise ValidationError({name: f"must be at least {minimum}"})
    return value


def _bool(params, name, default):
    value = params.get(name, default)
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise ValidationError({name: f"must be true or false, not {value!r}"})


MODE_PARAMS = {
    Mode.FULL: (),
    Mode.MEMORY: ("key",),
    Mode.INCREMENTAL: ("max_age", "response_window", "limit"),
    Mode.FINETUNE: ("count", "min_divergence", "alternates"),
}


def clean_params(agent, mode, params):
    """Validated parameters of a mode with the agent's defaults filled in."""
    if mode not in Mode.values:
        raise ValidationError({"mode": f"unknown mode {mode!r}; one of {', '.join(Mode.values)}"})
    # Forms send every field; a blank one means "the default".
    given = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
    unknown = sorted(set(given) - set(MODE_PARAMS[mode]))
    if unknown:
        raise ValidationError({unknown[0]: f"not a parameter of the {mode} mode"})
    if mode == Mode.MEMORY:
        key = str(given.get("key", "")).strip()
        if not key:
            raise ValidationError({"key": "give the memory key to score"})
        return {"key": key}
    if mode == Mode.INCREMENTAL:
        return {
            "max_age": _int(given, "max_age", agent.incremental_max_age, 0),
            "response_window": _int(given, "response_window", agent.incremental_response_window, 1),
            "limit": _int(given, "limit", agent.incremental_batch, 1),
        }
    if mode == Mode.FINETUNE:
        return {
            "count": _int(given, "count", agent.finetune_count, 1),
            "min_divergence": _float(given, "min_divergence", agent.finetune_min_divergence, 0.0),
            "alternates": _bool(given, "alternates", False),
        }
    return {}


# --- plans ----------------------------------------------------------------------


def _memories(agent, keys):
    """{key: Memory}, creating rows the import has not (older snapshots)."""
    found = {m.key: m for m in Memory.objects.filter(agent=agent, key__in=keys)}
    missing = [k for k in keys if k not in found]
    if missing:
        Memory.objects.bulk_create([Memory(agent=agent, key=k) for k in missing], ignore_conflicts=True)
        found = {m.key: m for m in Memory.objects.filter(agent=agent, key__in=keys)}
    return found


def plan_full(snapshot, outline, params):
    keys = outline.keys()
    if not keys:
        raise ValidationError({"snapshot": "this snapshot has no memories to score"})
    end = len(outline.entries)
    if not outline.responses_in(0, end):
        raise ValidationError({"snapshot": "this snapshot has no assistant responses to score"})
    memories = _memories(snapshot.agent, keys)
    calls = [CallSpec(Filter.NONE, 0, end)]
    calls += [CallSpec(Filter.SKIP_KEY, 0, end, memory=memories[k], baseline=0) for k in keys]
    return Plan(params, calls, {})


def plan_memory(snapshot, outline, params):
    key = params["key"]
    start = outline.first_position(key, identity_first=False)
    if start is None:
        raise ValidationError({"key": f"no memory with key {key!r} in this snapshot"})
    end = outline.window_end(start, MEMORY_RESPONSE_WINDOW)
    if not outline.responses_in(start, end):
        raise ValidationError({"key": f"no assistant response follows memory {key!r}"})
    memory = _memories(snapshot.agent, [key])[key]
    calls = [
        CallSpec(Filter.NONE, start, end),
        CallSpec(Filter.SKIP_KEY, start, end, memory=memory, baseline=0),
    ]
    return Plan(params, calls, {})


def plan_incremental(snapshot, outline, params, now=None):
    now = now or timezone.now()
    keys = outline.keys()
    memories = _memories(snapshot.agent, keys)
    due_ids = set(
        Memory.objects.filter(pk__in=[m.pk for m in memories.values()])
        .due_for_scoring(now, params["max_age"])
        .values_list("pk", flat=True)
    )
    positions = {k: outline.first_position(k) for k in keys}
    due = [memories[k] for k in keys if memories[k].pk in due_ids]
    # Never scored first, then the longest ago; ties in context order.
    due.sort(key=lambda m: (m.last_scored is not None, m.last_scored or now, positions[m.key]))

    cumulative, running = [], 0
    for e in outline.entries:
        running += e.n_tokens
        cumulative.append(running)
    total = running
    num, den = INCREMENTAL_CUTOFF

    calls, skipped = [], []
    for memory in due:
        if len(calls) // 2 >= params["limit"]:
            break
        pos = positions[memory.key]
        upto = cumulative[pos] if pos < len(cumulative) else total
        if upto * den > total * num:
            skipped.append({"key": memory.key, "reason": "past 60% of the conversation"})
            continue
        end = outline.window_end(pos, params["response_window"])
        if not outline.responses_in(pos, end):
            skipped.append({"key": memory.key, "reason": "no response after it"})
            continue
        calls.append(CallSpec(Filter.NONE, pos, end))
        calls.append(CallSpec(Filter.SKIP_KEY, pos, end, memory=memory, baseline=len(calls) - 1))
    if not calls:
        reason = "no memory of this snapshot is due for scoring"
        if skipped:
            reason = f"the {len(skipped)} due memories are too recent to score (past 60% of the conversation)"
        raise ValidationError({"snapshot": reason})
    return Plan(params, calls, {"skipped": skipped})


def plan_finetune(snapshot, outline, params):
    end = len(outline.entries)
    start = max(0, end - params["count"])
    if not outline.responses_in(start, end):
        raise ValidationError({"count": f"the last {params['count']} entries hold no assistant response"})
    calls = [CallSpec(Filter.NONE, start, end), CallSpec(Filter.SKIP_ALL, start, end, baseline=0)]
    return Plan(params, calls, {})


PLANNERS = {
    Mode.FULL: plan_full,
    Mode.MEMORY: plan_memory,
    Mode.INCREMENTAL: plan_incremental,
    Mode.FINETUNE: plan_finetune,
}


def plan(snapshot, mode, params):
    """Validate params and plan the calls; ValidationError names the bad field."""
    cleaned = clean_params(snapshot.agent, mode, params)
    return PLANNERS[mode](snapshot, Outline(snapshot), cleaned)
