"""Full matrix: every memory left out in turn, over the whole conversation.

One baseline call, then one call per memory key compared with it; the cells
are the whole result (its heatmap is the product's main page).

`keys` restricts the run to some memories (N+1 calls for N keys): an estimate
run's "Score the top N exactly" starts such a run and names itself in
`source_run`, so the run's page compares the two (scoring.modes.estimate).
A restricted run is not the agent's matrix: the memories page skips it.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, Sum
from django.template.defaultfilters import pluralize

from scoring import maths
from scoring.models import CellScore, ScoreCall, ScoringRun
from scoring.models.runs import Mode

from . import estimate
from .base import CallSpec, Filter, ParamsForm, Plan, ScoringMode, memories, whole_conversation, whole_number


class KeysField(forms.Field):
    """Memory keys as a list or one comma-separated string; blank: every key.
    The keys come back stripped, each once, in the order given."""

    def to_python(self, value):
        if value is None or value == "" or value == []:
            return None
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, (list, tuple)) or not all(isinstance(k, str) for k in value):
            raise ValidationError("must be memory keys: a list of strings or one comma-separated string",
                                  code="invalid")
        keys = list(dict.fromkeys(k.strip() for k in value if k.strip()))
        return keys or None


class FullParams(ParamsForm):
    keys = KeysField(
        required=False, label="Memory keys", widget=forms.TextInput(attrs={"spellcheck": "false"}),
        help_text="full mode: memory keys, comma-separated (e.g. people/alice, prefs/coffee); blank: every "
                  "memory. N keys take N+1 calls",
    )
    source_run = whole_number(
        1, label="Checks the estimate of run",
        help_text="full mode: the estimate run whose top memories these keys are (set by that run's page)",
    )

    def clean(self):
        # Blank parameters (every key, no estimate) are left out of the run's record.
        return {k: v for k, v in super().clean().items() if v is not None}


class FullMode(ScoringMode):
    name = Mode.FULL
    Params = FullParams
    has_heatmap = True
    # Packing a million cells takes seconds: do it as the run ends, not on the first view.
    warm_heatmap = True
    # Shows the estimate-vs-exact comparison when the run checks an estimate (source_run).
    detail_template = "scoring/_estimate_check.html"
    identifiers = ("source_run",)
    result_labels = {"memories": "Memories scored", "failed_memories": "Memories whose call failed",
                     "cells": "Cells", "failed_cells": "Cells failed", "responses": "Responses"}
    unshown_when_none = ("failed_memories", "failed_cells")

    def page_form(self, snapshot, data=None):
        form = super().page_form(snapshot, data)
        # Only an estimate run's button sets it.
        del form.fields["source_run"]
        return form

    def plan(self, snapshot, outline, params):
        keys, end = whole_conversation(outline)
        if params.get("keys"):
            known = set(keys)
            unknown = [k for k in params["keys"] if k not in known]
            if unknown:
                raise ValidationError({"keys": f"no memory with {keys_in_words(unknown)} in this snapshot"})
            chosen = set(params["keys"])
            keys = [k for k in keys if k in chosen]
        if params.get("source_run") is not None:
            _check_source(snapshot, params["source_run"])
        found = memories(snapshot.agent, keys)
        calls = [CallSpec(Filter.NONE, 0, end)]
        calls += [CallSpec(Filter.SKIP_KEY, 0, end, memory=found[k], baseline=0) for k in keys]
        return Plan(params, calls, {})

    def detail_context(self, run):
        if run.params.get("source_run") is None:
            return {}
        return {"check": estimate.exact_check(run)}

    def summary(self, run):
        """What the run scored, apart from what failed (unknown, never a score)."""
        calls = ScoreCall.objects.filter(run=run, filter=Filter.SKIP_KEY).aggregate(
            memories=Count("pk", filter=Q(status=ScoreCall.Status.DONE)),
            failed_memories=Count("pk", filter=Q(status=ScoreCall.Status.FAILED)))
        failed_cell = Q(state=CellScore.State.FAILED)
        cells = CellScore.objects.filter(run=run).aggregate(
            cells=Count("pk", filter=~failed_cell), failed_cells=Count("pk", filter=failed_cell))
        # The failed counts always, 0 too: a run whose failed calls were sent
        # again ends with none, replacing the counts it ended with before.
        return {"memories": calls["memories"], "cells": cells["cells"],
                "failed_memories": calls["failed_memories"], "failed_cells": cells["failed_cells"]}

    def report(self, run, write):
        result = run.result or {}
        if "memories" in result:
            n, cells = result["memories"], result["cells"]
            failed = result.get("failed_memories", 0)
            write(f"{n} memor{pluralize(n, 'y,ies')}, {cells} cell{pluralize(cells)}"
                  + (f"; {failed} memor{pluralize(failed, 'y,ies')} failed ({result.get('failed_cells', 0)} cells)"
                     if failed else ""))
        known, unknown = ranked_importance(run)
        if known:
            write(f"most important (importance: the sum of a memory's cells above {maths.ZERO_THRESHOLD} nats), "
                  f"{min(TOP_REPORTED, len(known))} of {len(known)}:")
            width = max(len(key) for key, _ in known[:TOP_REPORTED])
            for rank, (key, importance) in enumerate(known[:TOP_REPORTED], start=1):
                write(f"  {rank}. {key:<{width}}  {importance:.3f}")
        if unknown:
            write(f"unknown: {len(unknown)} memor{pluralize(len(unknown), 'y,ies')} whose call failed (not 0): "
                  + ", ".join(unknown[:TOP_REPORTED]) + (", ..." if len(unknown) > TOP_REPORTED else ""))


# Memories the command line names, most important first.
TOP_REPORTED = 5


def ranked_importance(run):
    """([(key, importance)] most important first, [keys whose importance is
    unknown]) over the run's cells, in one grouped query."""
    rows = CellScore.objects.filter(run=run).values("memory__key").annotate(
        # Mirrors maths.importance_sum: the scored cells' deltas above ZERO_THRESHOLD (the others count 0).
        importance=Sum("delta", filter=Q(failed=False, delta__gt=maths.ZERO_THRESHOLD)),
        failed_cells=Count("pk", filter=Q(failed=True)),
        measured=Count("pk", filter=Q(state=CellScore.State.SCORED)),
    )
    known, unknown = [], []
    for row in rows:
        if maths.importance_unknown(row["failed_cells"], row["measured"]):
            unknown.append(row["memory__key"])
        else:
            known.append((row["memory__key"], row["importance"] or 0.0))
    known.sort(key=lambda item: (-item[1], item[0]))
    return known, sorted(unknown)


# Unknown keys named in an error; the rest are counted.
KEYS_NAMED = 10


def keys_in_words(keys):
    """"key 'a'", "keys 'a' and 'b'", "keys 'a', 'b', ... and 3 more": every
    one a user got wrong, so one correction is enough."""
    named = [repr(k) for k in keys[:KEYS_NAMED]]
    if len(keys) == 1:
        return f"key {named[0]}"
    if len(keys) > KEYS_NAMED:
        return f"keys {', '.join(named)} and {len(keys) - KEYS_NAMED} more"
    return f"keys {', '.join(named[:-1])} and {named[-1]}"


def _check_source(snapshot, pk):
    if not ScoringRun.objects.filter(pk=pk, snapshot=snapshot, mode=Mode.ESTIMATE).exists():
        raise ValidationError({"source_run": f"run {pk} is not an estimate run of this snapshot"})


MODE = FullMode()
