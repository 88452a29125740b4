"""Fine-tune mode: responses the model predicts much worse without memories.

Candidates are built when the run's two calls are done; alternates (what the
model says with no memories) are generated one candidate at a time, by a
Celery task each or inline for the command line.
"""

import datetime
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from scoring.client import InferenceClient, call_with_retries
from scoring.models import Candidate, Node, ScoreCall

from .tokens import snapshot_tokens

log = logging.getLogger(__name__)

Filter = ScoreCall.Filter
ASSISTANT_PREFIX = "<|im_start|>assistant\n"
ALTERNATE_SAMPLING = {"temperature": 0.6, "top_p": 0.95, "top_k": 20}


def response_key(timestamp):
    """A response's identity across snapshots: its timestamp, in UTC ISO form."""
    return timestamp.astimezone(datetime.timezone.utc).isoformat()


def divergences(baseline, without):
    return [max(0.0, b - w) for b, w in zip(baseline, without)]


def build_candidates(run, call, baseline, tokens, *, enqueue_alternates):
    """Create (or refresh, while nobody has reviewed them) the run's candidates.

    Returns what the run's result records: ids of its candidates, highest
    divergence first, and how many were new.
    """
    params = run.params
    entries = tokens.responses(call.range_start, call.range_end)
    ranked = sorted(
        zip(entries, divergences(baseline.result, call.result)), key=lambda pair: -pair[1]
    )
    above = [(entry, div) for entry, div in ranked if div >= params["min_divergence"]]
    nodes = Node.objects.in_bulk([entry.node_id for entry, _ in above])
    timed = [(entry, div, nodes[entry.node_id]) for entry, div in above if nodes[entry.node_id].timestamp]
    existing = {
        c.response_key: c
        for c in Candidate.objects.filter(
            agent_id=run.agent_id, response_key__in=[response_key(n.timestamp) for _, _, n in timed]
        )
    }
    reviewed = set(
        Candidate.objects.filter(pk__in=[c.pk for c in existing.values()], reviews__isnull=False)
        .values_list("pk", flat=True)
    )

    ids, new, wants_alternate = [], 0, []
    for entry, div, node in timed:
        key = response_key(node.timestamp)
        candidate = existing.get(key)
        if candidate is not None and (
            candidate.status != Candidate.Status.PENDING or candidate.pk in reviewed
        ):
            # Trained, decided or under review: a re-run changes nothing about it.
            if candidate.status != Candidate.Status.TRAINED:
                ids.append(candidate.pk)
            continue
        fields = {
            "snapshot_id": run.snapshot_id,
            "run": run,
            "response": node,
            "divergence": div,
            "response_text": node.text,
            "context_ids": tokens.tokens(0, entry.index, Filter.NONE),
            "continuation_ids": tokens.node_ids(entry.index),
        }
        if candidate is None:
            try:
                with transaction.atomic():
                    candidate = Candidate.objects.create(agent_id=run.agent_id, response_key=key, **fields)
            except IntegrityError:
                continue  # another run made it a candidate a moment ago
            new += 1
        else:
            Candidate.objects.filter(pk=candidate.pk).update(**fields)
        ids.append(candidate.pk)
        if params.get("alternates") and candidate.alternate_status != Candidate.AlternateStatus.DONE:
            wants_alternate.append(candidate.pk)

    if wants_alternate:
        Candidate.objects.filter(pk__in=wants_alternate).update(
            alternate_status=Candidate.AlternateStatus.PENDING,
            alternate_error="",
            alternate_requested_at=timezone.now(),
        )
        if enqueue_alternates:
            transaction.on_commit(lambda: enqueue_alternates_of(wants_alternate))
    return {
        "responses": len(entries),
        "above_threshold": len(above),
        "without_timestamp": len(above) - len(timed),
        "candidates": ids,
        "new": new,
    }


def enqueue_alternates_of(candidate_ids):
    """One task per alternate; one that cannot be sent says so and stays pending,
    and resend_lost_alternates sends it again once the broker is back."""
    from scoring.tasks.scoring import generate_alternate

    for pk in candidate_ids:
        try:
            generate_alternate.delay(pk)
        except Exception as e:  # the broker is down: say so on the candidate
            Candidate.objects.filter(pk=pk, alternate_status=Candidate.AlternateStatus.PENDING).update(
                alternate_error=f"could not be queued yet ({e}); it will be sent again"[:2000],
            )


def alternate_prompt(candidate, client):
    """Everything before the response with all memories removed, then an assistant turn's start."""
    tokens = snapshot_tokens(candidate.snapshot)
    prefix = client.tokenize(ASSISTANT_PREFIX)
    return tokens.tokens(0, candidate.response.index, Filter.SKIP_ALL) + prefix


def generate_alternate(candidate):
    """Generate and store one candidate's alternate; InferenceError when it fails.

    Transient errors are retried here with backoff; the caller records a
    failure that remains (see record_alternate_failure).
    """
    with InferenceClient.for_agent(candidate.agent) as client:
        prompt = call_with_retries(lambda: alternate_prompt(candidate, client))
        text = call_with_retries(lambda: client.complete(prompt, **ALTERNATE_SAMPLING))
    Candidate.objects.filter(pk=candidate.pk).update(
        alternate_text=text, alternate_status=Candidate.AlternateStatus.DONE, alternate_error=""
    )
    return text


def record_alternate_failure(candidate, error):
    log.warning("alternate for candidate %s failed: %s", candidate.pk, error)
    Candidate.objects.filter(pk=candidate.pk).exclude(
        alternate_status=Candidate.AlternateStatus.DONE
    ).update(alternate_status=Candidate.AlternateStatus.FAILED, alternate_error=str(error)[:2000])
