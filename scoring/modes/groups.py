"""Groups: leave out a group of memories at a time, then score members only
where a group matters (after AttriBoT's hierarchical attribution, issue 11).

Stage 1 (planned up front): one baseline call, one call per group with all
its keys left out (skip_keys; a one-member group's call is that memory's
own leave-one-out, skip_key), and one per pair of memories whose texts are
duplicates or near-duplicates (maths.near_duplicate), wherever they are.

Stage 2 (planned as results come): a group or pair whose removal moves its
responses by at least `threshold` nats (maths.removal_effect) has each of
its members left out in turn (skip_key, compared with the same baseline):
exact leave-one-out cells, the same calls as a full matrix's. settle() adds
them in the transaction that stores the group's result, with the run's row
locked, so the run cannot end before they are done.

Redundancy: a set (group or pair) whose leave-out cost exceeds the sum of
its members' own by at least `redundancy_margin` nats (maths.is_redundant)
flags its members as redundant with each other: for a pair, both; for a
group, the members that each cost less than the margin alone
(maths.replaceable_members). The run's result holds the groups, ranked,
with their members, and the flags with the nats that back them.
"""

from collections import Counter, defaultdict

from django import forms
from django.core.exceptions import ValidationError
from django.template.defaultfilters import pluralize

from scoring import maths
from scoring.context import Outline
from scoring.followups import Followups
from scoring.models import Node, ScoreCall, Section
from scoring.models.runs import Mode

from .base import (
    CallSpec,
    Filter,
    ParamsForm,
    Plan,
    ScoringMode,
    memories,
    number,
    whole_conversation,
    whole_number,
)

DEFAULT_SEPARATOR = "/"
DEFAULT_MAX_PAIRS = 100
Status = ScoreCall.Status


class GroupsParams(ParamsForm):
    separator = forms.CharField(
        label="Group separator", required=False, max_length=10, strip=False,
        help_text=f"groups mode: a key's group is its part before the first separator [{DEFAULT_SEPARATOR}]",
    )
    threshold = number(
        0, label="Stage-2 threshold (nats)",
        help_text="groups mode: score the members of a group or pair whose removal moves its responses "
                  f"by at least this many nats, either way [{maths.GROUP_THRESHOLD_NATS}]",
    )
    redundancy_margin = number(
        0, label="Redundancy margin (nats)",
        help_text="groups mode: flag members as redundant when leaving them out together costs this many "
                  f"nats more than leaving each out [{maths.REDUNDANCY_MARGIN_NATS}]",
    )
    max_pairs = whole_number(
        0, 10_000, label="Duplicate pairs at most",
        help_text=f"groups mode: pairs of near-duplicate memories to score [{DEFAULT_MAX_PAIRS}]",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["separator"].initial = DEFAULT_SEPARATOR
        self.fields["threshold"].initial = maths.GROUP_THRESHOLD_NATS
        self.fields["redundancy_margin"].initial = maths.REDUNDANCY_MARGIN_NATS
        self.fields["max_pairs"].initial = DEFAULT_MAX_PAIRS

    def clean_separator(self):
        # Not given: the default (a CharField cleans a missing value to "").
        # Given empty: refused, not replaced by the default behind the user's
        # back (an empty separator would put every key in a group of its own).
        if self.data.get("separator") is None:
            return None
        if self.cleaned_data.get("separator") == "":
            raise ValidationError(
                f"must not be empty: a key's group is its part before the separator (e.g. {DEFAULT_SEPARATOR})",
                code="required",
            )
        return self.cleaned_data["separator"]


def group_keys(keys, separator):
    """{group: [keys]} in context order (maths.group_of)."""
    groups = defaultdict(list)
    for key in keys:
        groups[maths.group_of(key, separator)].append(key)
    return dict(groups)


def memory_words(snapshot, keys):
    """{key: its text's words (maths.text_words)}, the text of the key's first node in context order."""
    order = {key: i for i, key in enumerate(keys)}
    words = {}
    rows = Node.objects.filter(snapshot=snapshot).memories().values_list("memory_key", "section", "index", "text")
    for key, _, _, text in sorted(rows, key=lambda r: (r[1] != Section.IDENTITY, r[2])):
        if key in order and key not in words:
            words[key] = maths.text_words(text)
    return words


def duplicate_pairs(words, keys):
    """The pairs of keys whose texts are near-duplicates, in context order.

    Candidates come from prefix filtering (each text indexed under its rarest
    few words, enough that any two texts passing the Jaccard bound share one),
    so a large snapshot is not compared pair by pair."""
    frequency = Counter(w for key in keys for w in set(words.get(key, ())))
    index, pairs = defaultdict(list), set()
    for i, key in enumerate(keys):
        distinct = sorted(set(words.get(key, ())), key=lambda w: (frequency[w], w))
        if not distinct:
            continue
        # Two sets with Jaccard >= t share one of each one's first |s| - ceil(t |s|) + 1 rarest words.
        prefix = len(distinct) - int(maths.NEAR_DUPLICATE_JACCARD * len(distinct)) + 1
        seen = set()
        for word in distinct[:prefix]:
            for j in index[word]:
                if j not in seen:
                    seen.add(j)
                    if maths.near_duplicate(words[keys[j]], words[key]):
                        pairs.add((j, i))
            index[word].append(i)
    return [(keys[j], keys[i]) for j, i in sorted(pairs)]


class GroupsMode(ScoringMode):
    name = Mode.GROUPS
    Params = GroupsParams
    # Its cells are the stage-2 members' exact ones (the others are group-only).
    has_heatmap = True
    detail_template = "scoring/_groups_detail.html"
    result_labels = {
        "groups": "Groups", "pairs": "Near-duplicate pairs scored", "pairs_found": "Near-duplicate pairs found",
        "calls_used": "Calls used", "exact_calls": "Exact matrix calls (N+1)",
        "stage2_groups": "Groups scored member by member", "exact_memories": "Memories scored exactly",
        "failed_memories": "Memories whose own call failed",
        "group_only": "Memories scored only with their group", "redundant": "Redundancy flags",
        "unjudged": "Sets not judged for redundancy (a call failed)",
    }
    unshown_when_none = ("failed_memories", "unjudged")

    def detail_context(self, run):
        return {"zero_threshold": maths.ZERO_THRESHOLD}

    def page_note(self, snapshot):
        keys = Outline(snapshot).keys()
        groups = group_keys(keys, DEFAULT_SEPARATOR)
        return (f"Pays off only with few, large groups: stage 1 takes a call per group ({len(groups)} groups "
                f"by “{DEFAULT_SEPARATOR}” here, {len(groups) + 1} calls with the baseline, plus near-duplicate "
                f"pairs), then each member of a group that matters adds one; the exact full matrix takes "
                f"{len(keys) + 1} calls.")

    def total_is_provisional(self, run):
        """While a group's call is still to come, stage 2 may add calls."""
        return run.is_active and ScoreCall.objects.filter(run=run, filter=Filter.SKIP_KEYS).exclude(
            status__in=[Status.DONE, Status.FAILED]).exists()

    def plan(self, snapshot, outline, params):
        keys, end = whole_conversation(outline)
        found = memories(snapshot.agent, keys)
        groups = group_keys(keys, params["separator"])
        pairs = duplicate_pairs(memory_words(snapshot, keys), keys)
        scored_pairs = pairs[: params["max_pairs"]]
        calls, planned = [CallSpec(Filter.NONE, 0, end)], set()
        for members in [*groups.values(), *scored_pairs]:
            if frozenset(members) in planned:
                continue
            planned.add(frozenset(members))
            if len(members) == 1:
                calls.append(CallSpec(Filter.SKIP_KEY, 0, end, memory=found[members[0]], baseline=0))
            else:
                calls.append(CallSpec(Filter.SKIP_KEYS, 0, end, baseline=0, removed_keys=tuple(members)))
        notes = {
            "groups": [{"group": name, "keys": members} for name, members in groups.items()],
            "pairs": [list(pair) for pair in scored_pairs], "pairs_found": len(pairs),
            "exact_calls": len(keys) + 1,
        }
        return Plan(params, calls, notes)

    def settle(self, run, call, baseline, tokens):
        """Stage 2: a group or pair that matters gets its members' own calls."""
        if call.filter != Filter.SKIP_KEYS:
            return None
        effect = maths.removal_effect([maths.delta(b, w) for b, w in zip(baseline.result, call.result)])
        if effect < run.params["threshold"]:
            return None
        have = set(
            ScoreCall.objects.filter(run=run, baseline_id=call.baseline_id, filter=Filter.SKIP_KEY)
            .values_list("memory__key", flat=True)
        )
        missing = [key for key in call.removed_keys if key not in have]
        if not missing:
            return None
        found = memories(run.agent, missing)
        run.add_calls([
            CallSpec(Filter.SKIP_KEY, call.range_start, call.range_end, memory=found[key], baseline=baseline)
            for key in missing
        ])
        # Tasks that already found nothing to claim have left: send the run again.
        return Followups(runs=[run.pk])

    def summary(self, run):
        return summarise(run, list(ScoreCall.objects.filter(run=run).select_related("memory").order_by("seq")))

    def report(self, run, write):
        result = run.result or {}
        if "calls_used" not in result:
            return
        n_groups = len(result["groups"])
        write(f"{n_groups} group{pluralize(n_groups)}, {result['stage2_groups']} scored member by member; "
              f"{result['calls_used']} calls (the exact matrix takes {result['exact_calls']})")
        if result["calls_used"] > result["exact_calls"]:
            write(f"WARNING: these groups took {result['calls_used']} calls, more than the exact full matrix's "
                  f"{result['exact_calls']}: the full matrix would have been exact and cheaper")
        for group in result["groups"]:
            importance = "failed" if group["importance"] is None else f"{group['importance']:.3f}"
            n = len(group["keys"])
            write(f"  {group['group']}: {importance} ({n} memor{'y' if n == 1 else 'ies'}"
                  f"{', members scored' if group['stage2'] else ''})")
        for flag in result["redundant"]:
            write(f"redundant with each other: {', '.join(flag['keys'])} (together {flag['together']:.2f} "
                  f"nats, each alone summed {flag['alone_sum']:.2f})")
        for item in result.get("unjudged", []):
            write(f"not judged for redundancy: {unjudged_text(item)}")


def unjudged_text(item):
    """A set that could not be judged for redundancy, and why, in words."""
    what = f"group {item['group']}" if item["kind"] == "group" else f"pair {', '.join(item['keys'])}"
    if item["why"]:
        return f"{what} ({item['why']})"
    failed = item["failed"]
    return f"{what} (the own call of {', '.join(failed)} failed)"


def summarise(run, calls):
    """The run's result: groups ranked by importance with their members, and
    the redundancy flags (see the module's docstring)."""
    notes, params = run.result or {}, run.params
    baseline = next((c for c in calls if c.filter == Filter.NONE), None)
    ok = baseline is not None and baseline.status == Status.DONE

    def deltas(call):
        if not ok or call is None or call.status != Status.DONE:
            return None
        # None in a leave-one-out's result: a response before the memory, exactly as in the baseline.
        return [maths.delta(b, b if w is None else w) for b, w in zip(baseline.result, call.result)]

    alone = {c.memory.key: deltas(c) for c in calls if c.filter == Filter.SKIP_KEY}
    together = {frozenset(c.removed_keys): deltas(c) for c in calls if c.filter == Filter.SKIP_KEYS}

    def set_deltas(keys):
        return alone.get(keys[0]) if len(keys) == 1 else together.get(frozenset(keys))

    def cost(d):
        return None if d is None else maths.leave_out_cost(d)

    groups = []
    for group in notes.get("groups", []):
        keys, d = group["keys"], set_deltas(group["keys"])
        groups.append({
            **group, "importance": cost(d), "net": None if d is None else maths.net_delta(d),
            "effect": None if d is None else maths.removal_effect(d),
            "stage2": len(keys) > 1 and d is not None and maths.removal_effect(d) >= params["threshold"],
            "members": [{"key": k, "importance": cost(alone.get(k)), "exact": k in alone} for k in keys],
        })
    groups.sort(key=lambda g: (g["importance"] is None, -(g["importance"] or 0.0)))

    flags, margin = [], params.get("redundancy_margin", maths.REDUNDANCY_MARGIN_NATS)
    sets = [(pair, "pair", None) for pair in notes.get("pairs", [])]
    sets += [(g["keys"], "group", g["group"]) for g in groups if len(g["keys"]) > 1]
    flagged, unjudged = set(), []
    for keys, kind, name in sets:
        costs = {k: cost(alone.get(k)) for k in keys}
        whole = cost(set_deltas(keys))
        # A cost left unknown by a failed call: the set cannot be judged, and
        # the page must not read its absence from the flags as "not redundant".
        # (A member never left out alone is by design: its set was below the threshold.)
        failed = [k for k in keys if k in alone and alone[k] is None]
        if whole is None or failed:
            unjudged.append({"kind": kind, "group": name, "keys": list(keys),
                             "why": "its call failed" if whole is None else None, "failed": failed})
            continue
        if None in costs.values() or not maths.is_redundant(whole, costs.values(), margin):
            continue
        members = list(keys) if kind == "pair" else maths.replaceable_members(costs, margin)
        if len(members) < 2 or frozenset(members) in flagged:
            continue
        flagged.add(frozenset(members))
        flags.append({"kind": kind, "group": name, "keys": members, "together": whole,
                      "alone_sum": sum(costs.values()), "excess": maths.redundancy_excess(whole, costs.values())})
    return {
        "groups": groups, "redundant": flags, "calls_used": len(calls),
        "stage2_groups": sum(1 for g in groups if g["stage2"]),
        # Left out one at a time, the heatmap's rows: exact cells, or failed
        # ones (unknown, never zero); the others' are absent.
        "exact_memories": [k for k, d in alone.items() if d is not None],
        "failed_memories": [k for k, d in alone.items() if d is None],
        "group_only": [k for g in groups for k in g["keys"] if k not in alone],
        # Sets whose redundancy is unknown: their own call, or a member's, failed.
        "unjudged": unjudged,
    }


def redundancy_by_key(run):
    """{key: [flags naming it]} of a finished groups run (for the memories pages)."""
    found = defaultdict(list)
    for flag in (run.result or {}).get("redundant", []) if run is not None else []:
        for key in flag["keys"]:
            found[key].append({**flag, "others": [k for k in flag["keys"] if k != key]})
    return dict(found)


MODE = GroupsMode()
