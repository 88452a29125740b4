"""Fine-tune candidates: responses the model predicts much worse without memories.

Two calls over the last `count` entries, with and without every memory; the
responses whose divergence reaches `min_divergence` become candidates for
review. Their alternates (what the model says with no memories) are asked
for through the Followups this mode returns; the engine generates them.
"""

import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.template.defaultfilters import pluralize

from scoring import maths
from scoring.followups import Followups
from scoring.models import Candidate, Node, ScoreCall
from scoring.models.runs import Mode

from .base import CallSpec, Filter, FlagField, ParamsForm, Plan, ScoringMode, number, whole_number


def response_key(timestamp):
    """A response's identity across snapshots: its timestamp, in UTC ISO form."""
    return timestamp.astimezone(datetime.UTC).isoformat()


class FinetuneParams(ParamsForm):
    count = whole_number(
        1, label="Last entries", help_text="finetune: how many of the conversation's last entries to score"
    )
    min_divergence = number(
        0.0, label="Minimum divergence (nats)", help_text="finetune: candidates' threshold (nats)"
    )
    alternates = FlagField(
        label="Generate alternates (the answer without memories)", initial=False,
        help_text="finetune: also generate what the model says without memories",
    )
    make_candidates = FlagField(
        label="Make candidates", initial=True,
        help_text="finetune: off measures the divergences only, as a re-score after training does: the "
                  "review queue is left as it is (and no alternates: they are the candidates')",
    )
    agent_defaults = {"count": "finetune_count", "min_divergence": "finetune_min_divergence"}

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("make_candidates") is False and cleaned.get("alternates"):
            raise ValidationError({"alternates": "alternates are generated for candidates: with Make candidates "
                                                 "off there are none (untick one of the two)"})
        # Recorded only when off (a re-score's runs): every other fine-tune run makes candidates.
        if cleaned.get("make_candidates") is True:
            del cleaned["make_candidates"]
        return cleaned


class FinetuneMode(ScoringMode):
    name = Mode.FINETUNE
    Params = FinetuneParams
    result_labels = {
        "responses": "Responses scored",
        "above_threshold": "Above the minimum divergence",
        "without_timestamp": "Left out (no timestamp)",
        "candidates": "Candidates",
        "new": "New candidates",
    }

    # A measure-only run's own block: what it measured (a run that makes
    # candidates has the candidate list for that).
    detail_template = "scoring/_finetune_measured.html"

    def detail_context(self, run):
        if makes_candidates(run):
            return {}
        return {"measured": response_divergences(run), "threshold": run.params.get("min_divergence")}

    def page_form(self, snapshot, data=None):
        form = super().page_form(snapshot, data)
        # Ticked on the page: reviewers judge a candidate against what the
        # model says without memories, and without it the review page has
        # "No alternate was requested". The command line and the API keep
        # off (--alternates): generating costs a completion per candidate.
        # Only the box's initial state: the page sends a hidden "0" under a
        # box left unticked, and a post without either (an older page) is off.
        if data is None:
            form.fields["alternates"].initial = True
        return form

    def plan(self, snapshot, outline, params):
        if not outline.keys():
            # The call without memories would be the baseline again: no response can lose anything.
            raise ValidationError({"snapshot": "this snapshot has no memories, so no response depends on them"})
        end = len(outline.entries)
        start = max(0, end - params["count"])
        if not outline.responses_in(start, end):
            raise ValidationError({"count": f"the last {params['count']} entries hold no assistant response"})
        calls = [CallSpec(Filter.NONE, start, end), CallSpec(Filter.SKIP_ALL, start, end, baseline=0)]
        return Plan(params, calls, {})

    def settle(self, run, call, baseline, tokens):
        """Build the candidates (unless the run only measures); ask for the
        alternates of those that want one."""
        if not makes_candidates(run):
            run.add_to_result(measured(run, call, baseline, tokens))
            return None
        found, wants_alternate = build_candidates(run, call, baseline, tokens)
        run.add_to_result(found)
        if run.params.get("alternates") and wants_alternate:
            return Followups(alternates=wants_alternate)
        return None

    def report(self, run, write):
        if not makes_candidates(run):
            found = run.result or {}
            write(f"measured only (no candidates): {found.get('above_threshold', 0)} of "
                  f"{found.get('responses', 0)} responses at the minimum divergence or above")
            return
        ids = (run.result or {}).get("candidates", [])
        candidates = Candidate.objects.in_bulk(ids)
        write(f"{len(ids)} candidate{pluralize(len(ids))} ({(run.result or {}).get('new', 0)} new)")
        for pk in ids:
            c = candidates[pk]
            start = " ".join(c.response_text.split())[:70]
            extra = f"  [{c.get_status_display()}]" if c.status != Candidate.Status.PENDING else ""
            if c.alternate_status == Candidate.AlternateStatus.FAILED:
                extra += f"  [alternate failed: {c.alternate_error[:80]}]"
            write(f"{c.pk}\t{c.divergence:.3f}\t{start}{extra}")


MODE = FinetuneMode()


def response_divergences(run):
    """[(response node, divergence)] of a fine-tune run, in conversation order:
    its two calls' responses, compared ([] until both are done)."""
    calls = {c.filter: c for c in ScoreCall.objects.filter(
        run=run, status=ScoreCall.Status.DONE, filter__in=[Filter.NONE, Filter.SKIP_ALL])}
    base, without = calls.get(Filter.NONE), calls.get(Filter.SKIP_ALL)
    if base is None or without is None:
        return []
    responses = Node.objects.responses().filter(
        snapshot_id=run.snapshot_id, index__gte=base.range_start, index__lt=base.range_end,
    ).defer("token_ids").order_by("index")
    return list(zip(responses, maths.divergences(base.result or [], without.result or [])))


def makes_candidates(run):
    """Whether a fine-tune run makes candidates (all but measure-only ones: a re-score's)."""
    return run.params.get("make_candidates", True)


def measured(run, call, baseline, tokens):
    """What a measure-only run records: how many responses, how many above the threshold."""
    divergences = maths.divergences(baseline.result, call.result)
    return {"responses": len(tokens.responses(call.range_start, call.range_end)),
            "above_threshold": sum(div >= run.params["min_divergence"] for div in divergences)}


def build_candidates(run, call, baseline, tokens):
    """Create (or refresh, while nobody has reviewed them) the run's candidates.

    Returns what the run's result records (ids of its candidates, highest
    divergence first, and how many were new), and the ids of the candidates
    whose alternate is not generated yet.
    """
    entries = tokens.responses(call.range_start, call.range_end)
    ranked = sorted(
        zip(entries, maths.divergences(baseline.result, call.result)), key=lambda pair: -pair[1]
    )
    above = [(entry, div) for entry, div in ranked if div >= run.params["min_divergence"]]
    nodes = Node.objects.in_bulk([entry.node_id for entry, _ in above])
    timed = [(entry, div, nodes[entry.node_id]) for entry, div in above if nodes[entry.node_id].timestamp]
    existing, reviewed = _existing_candidates(run, [response_key(n.timestamp) for _, _, n in timed])

    ids, new, wants_alternate = [], 0, []
    for entry, div, node in timed:
        candidate = existing.get(response_key(node.timestamp))
        if candidate is not None and (
            candidate.status != Candidate.Status.PENDING or candidate.pk in reviewed
        ):
            # Trained, decided or under review: a re-run changes nothing about it.
            if candidate.status != Candidate.Status.TRAINED:
                ids.append(candidate.pk)
            continue
        candidate, created = _save_candidate(run, candidate, entry, div, node, tokens)
        if candidate is None:
            continue
        new += created
        ids.append(candidate.pk)
        if candidate.alternate_status != Candidate.AlternateStatus.DONE:
            wants_alternate.append(candidate.pk)
    found = {
        "responses": len(entries),
        "above_threshold": len(above),
        "without_timestamp": len(above) - len(timed),
        "candidates": ids,
        "new": new,
    }
    return found, wants_alternate


def sample_filter(agent):
    """The filter of a training sample's context: nothing removed (DESIGN.md's
    samples), or every memory removed, so that training teaches the model to
    answer without them (what closes the divergence this mode measures)."""
    if agent.training_context == agent.TrainingContext.WITHOUT_MEMORIES:
        return Filter.SKIP_ALL
    return Filter.NONE


def _existing_candidates(run, keys):
    """The agent's candidates for these response keys by key, and which of them have reviews."""
    existing = {c.response_key: c for c in Candidate.objects.filter(agent_id=run.agent_id, response_key__in=keys)}
    reviewed = set(
        Candidate.objects.filter(pk__in=[c.pk for c in existing.values()], reviews__isnull=False)
        .values_list("pk", flat=True)
    )
    return existing, reviewed


def _save_candidate(run, candidate, entry, div, node, tokens):
    """Create the candidate, or refresh the unreviewed one; (candidate, created).
    (None, False) when another run created it a moment ago."""
    fields = {
        "snapshot_id": run.snapshot_id,
        "run": run,
        "response": node,
        "divergence": div,
        "response_text": node.text,
        # What the model sees before the response, as scoring sent it (the
        # agent's prefix ids, e.g. a BOS token, first), with or without the
        # memories as the agent's training_context says.
        "context_ids": list(run.agent.prefix_ids) + tokens.tokens(0, entry.index, sample_filter(run.agent)),
        "continuation_ids": tokens.node_ids(entry.index),
        "training_context": run.agent.training_context,
    }
    if candidate is not None:
        if candidate.response_text != node.text or candidate.context_ids != fields["context_ids"]:
            # A newer snapshot holds another text at this response's timestamp,
            # or another context before it: the alternate answered the old one.
            fields.update(alternate_text="", alternate_error="", alternate_cut_off=False,
                          alternate_status=Candidate.AlternateStatus.NONE)
            candidate.alternate_status = Candidate.AlternateStatus.NONE
        Candidate.objects.filter(pk=candidate.pk).update(**fields)
        return candidate, False
    try:
        with transaction.atomic():
            key = response_key(node.timestamp)
            return Candidate.objects.create(agent_id=run.agent_id, response_key=key, **fields), True
    except IntegrityError:
        return None, False
