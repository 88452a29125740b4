"""Fine-tune mode: candidates, their token ids, once per response, and alternates."""

import httpx
import pytest

from scoring.engine import run_inline, start_run
from scoring.engine.alternates import alternate_prompt
from scoring.models import Candidate, Node, Review, ScoreCall, ScoringRun
from scoring.modes.finetune import response_key
from tests.conftest import NO_FAULTS
from tests.engine_support import (
    build_ids,
    conversation_doc,
    make_snapshot,
    node_rows,
    private_refserver,  # noqa: F401  (this module's own server)
    score,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]


@pytest.fixture
def snapshot(agent):
    doc = conversation_doc(agent.name)
    # One response without a timestamp: it can never be tracked, so never a candidate.
    del doc["conversation"][5]["timestamp"]
    assert doc["conversation"][5]["role"] == "assistant"
    return make_snapshot(agent, doc)


def expected_divergences(base_url, snapshot, start):
    nodes = node_rows(snapshot)
    responses = [n for n in nodes if n.section == "conversation" and n.role == "assistant" and n.index >= start]
    base = score(base_url, build_ids(nodes, start))
    without = score(base_url, build_ids(nodes, start, skip=lambda n: bool(n.memory_key)))
    return {r.id: max(0.0, b - w) for r, b, w in zip(responses, base, without, strict=True)}, nodes


def test_it_makes_candidates_of_responses_that_need_their_memories(agent, snapshot, ref):
    n_entries = Node.objects.filter(snapshot=snapshot, section="conversation").count()
    count = n_entries - 3  # from the second question on: the first response is left out
    divs, nodes = expected_divergences(ref.base_url, snapshot, n_entries - count)

    run = run_inline(start_run(snapshot, "finetune", params={"count": count, "min_divergence": 1.0}))

    assert run.status == ScoringRun.Status.SUCCEEDED
    assert [(c.filter, c.range_start, c.range_end) for c in run.calls.order_by("seq")] == [
        (ScoreCall.Filter.NONE, n_entries - count, n_entries),
        (ScoreCall.Filter.SKIP_ALL, n_entries - count, n_entries),
    ]
    by_id = {n.id: n for n in nodes}
    wanted = [rid for rid, d in sorted(divs.items(), key=lambda kv: -kv[1])
              if d >= 1.0 and by_id[rid].timestamp is not None]
    assert wanted and len(wanted) < len(divs)
    assert run.result["candidates"] == list(
        Candidate.objects.filter(response_id__in=wanted).order_by("-divergence").values_list("id", flat=True)
    )
    assert run.result["new"] == len(wanted)
    for candidate in Candidate.objects.filter(run=run):
        node = by_id[candidate.response_id]
        assert candidate.divergence == pytest.approx(divs[node.id], abs=1e-9)
        assert candidate.response_text == node.text
        assert candidate.response_key == response_key(node.timestamp)
        assert candidate.continuation_ids == node.token_ids
        # Everything before the response, nothing removed.
        assert candidate.context_ids == build_ids(nodes, 0, node.index)
        assert candidate.status == Candidate.Status.PENDING
        assert candidate.alternate_status == Candidate.AlternateStatus.NONE
    untimed = Node.objects.get(snapshot=snapshot, section="conversation", index=5)
    assert not Candidate.objects.filter(response=untimed).exists()


def test_it_makes_a_response_a_candidate_once_and_leaves_reviewed_ones_alone(agent, snapshot, ref,
                                                                             django_user_model):
    params = {"count": 100, "min_divergence": 1.0}
    first = run_inline(start_run(snapshot, "finetune", params=params))
    ids = first.result["candidates"]
    assert len(ids) >= 3
    trained, reviewed, untouched = Candidate.objects.filter(pk__in=ids[:3]).order_by("-divergence")
    Candidate.objects.filter(pk=trained.pk).update(status=Candidate.Status.TRAINED)
    rita = django_user_model.objects.create_user("rita")
    Review.objects.create(candidate=reviewed, reviewer=rita, decision=Review.Decision.SKIP)
    Candidate.objects.filter(pk=untouched.pk).update(divergence=0.5)
    agent.training_context = agent.TrainingContext.WITHOUT_MEMORIES
    agent.save(update_fields=["training_context"])

    again = run_inline(start_run(snapshot, "finetune", params=params))

    assert again.status == ScoringRun.Status.SUCCEEDED
    assert Candidate.objects.count() == len(ids)
    assert again.result["new"] == 0
    assert trained.pk not in again.result["candidates"]
    kept = Candidate.objects.get(pk=reviewed.pk)
    assert kept.run_id == first.pk
    # The context its reviewer saw, under the setting it was made with.
    assert kept.context_ids == reviewed.context_ids and kept.training_context == agent.TrainingContext.AS_SCORED
    refreshed = Candidate.objects.get(pk=untouched.pk)
    assert refreshed.run_id == again.pk and refreshed.divergence == untouched.divergence
    assert refreshed.training_context == agent.TrainingContext.WITHOUT_MEMORIES
    assert len(refreshed.context_ids) < len(untouched.context_ids)  # its memories now left out


def test_it_generates_alternates_without_memories(agent, snapshot, ref):
    run = run_inline(start_run(snapshot, "finetune",
                               params={"count": 100, "min_divergence": 1.0, "alternates": True}))

    candidates = list(Candidate.objects.filter(run=run))
    assert candidates
    assert ref.stats()["calls"]["completions"] == len(candidates)
    nodes = node_rows(snapshot)
    prefix = httpx.post(f"{ref.base_url}/tokenize", json={
        "model": agent.model, "prompt": "<|im_start|>assistant\n", "add_special_tokens": False}).json()["tokens"]
    for c in candidates:
        assert c.alternate_status == Candidate.AlternateStatus.DONE
        assert c.alternate_text and c.alternate_error == ""
        from scoring.client import InferenceClient

        with InferenceClient.for_agent(agent) as client:
            prompt = alternate_prompt(c, client)
        assert prompt == build_ids(nodes, 0, c.response.index, skip=lambda n: bool(n.memory_key)) + prefix


def test_a_refreshed_candidate_takes_the_newer_response_and_a_new_alternate_only_when_it_changed(agent, ref):
    params = {"count": 100, "min_divergence": 1.0, "alternates": True}
    doc = conversation_doc(agent.name)
    first = run_inline(start_run(make_snapshot(agent, doc), "finetune", params=params))
    candidate = Candidate.objects.get(pk=first.result["candidates"][0])
    Candidate.objects.filter(pk=candidate.pk).update(alternate_text="the old alternate")
    # The same snapshot again: nothing changed, the alternate is kept.
    run_inline(start_run(first.snapshot, "finetune", params=params))
    assert Candidate.objects.get(pk=candidate.pk).alternate_text == "the old alternate"

    # A newer snapshot: the agent rewrote that response, at the same timestamp.
    at = next(i for i, n in enumerate(doc["conversation"]) if n["text"] == candidate.response_text)
    doc = {**doc, "taken_at": "2026-11-20T13:00:00Z"}
    doc["conversation"][at] = {**doc["conversation"][at], "text": candidate.response_text + " As you noted."}
    run_inline(start_run(make_snapshot(agent, doc), "finetune", params=params))

    candidate.refresh_from_db()
    assert candidate.response_text.endswith(" As you noted.")
    assert candidate.alternate_status == Candidate.AlternateStatus.DONE
    assert candidate.alternate_text != "the old alternate"


def test_it_records_a_failed_alternate(agent, snapshot, ref):
    ref.control(**{**NO_FAULTS, "fail_endpoints": ["completions"], "fail_rate": 1.0})

    run = run_inline(start_run(snapshot, "finetune",
                               params={"count": 100, "min_divergence": 1.0, "alternates": True}))

    assert run.status == ScoringRun.Status.SUCCEEDED
    candidates = Candidate.objects.filter(run=run)
    assert candidates.exists()
    for c in candidates:
        assert c.alternate_status == Candidate.AlternateStatus.FAILED
        assert "/completions HTTP 500" in c.alternate_error
        assert c.alternate_text == ""


def test_it_validates_its_parameters(agent, snapshot, ref):
    from django.core.exceptions import ValidationError

    for params, field in [({"count": 0}, "count"), ({"min_divergence": "lots"}, "min_divergence"),
                          ({"alternates": "maybe"}, "alternates"), ({"key": "x"}, "key")]:
        with pytest.raises(ValidationError) as e:
            start_run(snapshot, "finetune", params=params)
        assert field in e.value.message_dict
    assert not ScoringRun.objects.exists()


def test_it_trains_on_the_context_with_the_agents_prefix_ids(agent, snapshot, ref):
    # A model whose template starts with a BOS id sees it before every prompt:
    # the sample sent to /train must start with it too.
    agent.prefix_ids = [7]
    agent.save()
    n_entries = Node.objects.filter(snapshot=snapshot, section="conversation").count()

    run = run_inline(start_run(snapshot, "finetune", params={"count": n_entries, "min_divergence": 0.0}))

    nodes = node_rows(snapshot)
    candidates = list(Candidate.objects.filter(run=run).select_related("response"))
    assert run.status == ScoringRun.Status.SUCCEEDED and candidates
    for candidate in candidates:
        assert candidate.context_ids == [7] + build_ids(nodes, 0, candidate.response.index)


def test_an_agent_that_trains_without_memories_leaves_them_out_of_the_samples(agent, snapshot, ref):
    # Context distillation: the sample teaches the response without the memories.
    agent.prefix_ids = [7]
    agent.training_context = agent.TrainingContext.WITHOUT_MEMORIES
    agent.save()

    run = run_inline(start_run(snapshot, "finetune", params={"count": 100, "min_divergence": 0.0}))

    nodes = node_rows(snapshot)
    candidates = list(Candidate.objects.filter(run=run).select_related("response"))
    assert run.status == ScoringRun.Status.SUCCEEDED and candidates
    with_memories = 0
    for candidate in candidates:
        index = candidate.response.index
        assert candidate.context_ids == [7] + build_ids(nodes, 0, index, skip=lambda n: bool(n.memory_key))
        assert candidate.training_context == Candidate.TrainingContext.WITHOUT_MEMORIES
        with_memories += len(candidate.context_ids) < 1 + len(build_ids(nodes, 0, index))
    assert with_memories == len(candidates)  # every context had memories to leave out


def test_an_alternate_stopped_at_the_length_limit_says_so(agent, snapshot, ref, monkeypatch, cast):
    from django.urls import reverse

    from scoring.engine import alternates

    monkeypatch.setattr(alternates, "SAMPLING", {**alternates.SAMPLING, "max_tokens": 2})
    monkeypatch.setattr(alternates, "MAX_TOKENS", 2)
    run = run_inline(start_run(snapshot, "finetune",
                               params={"count": 100, "min_divergence": 1.0, "alternates": True}))

    candidate = Candidate.objects.filter(run=run).first()
    assert candidate.alternate_status == Candidate.AlternateStatus.DONE and candidate.alternate_cut_off
    page = cast.client_for(cast.reviewer).get(reverse("candidate_detail", args=[candidate.pk])).text
    assert "Cut off at the alternates' length limit (2 tokens): the model had not finished." in page
