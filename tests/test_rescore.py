"""Re-scoring after training measures each sample again over the range its
divergence "before" was measured on, and leaves the review queue as it is."""

import pytest
from django.urls import reverse

from scoring.engine import run_inline, start_run
from scoring.engine.rescore import rescore, samples_with_rescore
from scoring.models import Candidate, Node, TrainJob
from scoring.outbox import send_to_training
from tests.engine_support import conversation_doc, make_snapshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def found(agent):
    """A fine-tune run over the conversation from its second question on, and its candidates."""
    snapshot = make_snapshot(agent, conversation_doc(agent.name))
    entries = Node.objects.filter(snapshot=snapshot, section="conversation").count()
    run = run_inline(start_run(snapshot, "finetune", params={"count": entries - 3, "min_divergence": 0.5}))
    candidates = list(Candidate.objects.filter(run=run).order_by("-divergence"))
    assert len(candidates) >= 2
    return run, candidates


def trained(agent, cast, candidates):
    """A job of the candidates that succeeded, the model left as it was."""
    Candidate.objects.filter(pk__in=[c.pk for c in candidates]).update(status=Candidate.Status.APPROVED)
    job = send_to_training(agent, cast.operator)
    job.mark_accepted("job-1")
    TrainJob.objects.filter(pk=job.pk).update(status=TrainJob.Status.SUCCEEDED)
    job.refresh_from_db()
    return job


def test_it_measures_after_over_the_same_range_as_before(agent, cast, found):
    run, candidates = found
    # The latest response only: a re-score from it on would leave out every
    # question and memory before it.
    job = trained(agent, cast, candidates[-1:])

    [again] = rescore(job, by=cast.operator)
    run_inline(again)

    assert [c.range_start for c in again.calls.all()] == [c.range_start for c in run.calls.all()]
    assert again.params["count"] == run.params["count"]  # the two run pages read alike
    [sample] = samples_with_rescore(job)
    # The model did not change: the same divergence, to the last digit.
    assert sample.divergence_after == pytest.approx(candidates[-1].divergence, abs=1e-9)
    assert sample.change == pytest.approx(0.0, abs=1e-9)


def test_it_makes_no_candidates_and_leaves_pending_ones_alone(agent, cast, found):
    run, candidates = found
    trained_one, *pending = candidates
    job = trained(agent, cast, [trained_one])
    before = {c.pk: (c.divergence, c.run_id) for c in Candidate.objects.all()}

    [again] = rescore(job, by=cast.operator)
    again = run_inline(again)

    assert again.params["make_candidates"] is False
    assert "candidates" not in again.result and again.result["responses"] >= 2
    assert {c.pk: (c.divergence, c.run_id) for c in Candidate.objects.all()} == before
    assert Candidate.objects.filter(run=again).count() == 0


def test_a_measure_only_runs_page_shows_what_it_measured_and_no_candidates_button(agent, cast, found):
    run, candidates = found
    job = trained(agent, cast, candidates[:1])
    [again] = rescore(job, by=cast.operator)
    run_inline(again)

    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[again.pk])).text
    assert 'id="finetune-measured"' in page and "makes no candidates" in page
    assert again.get_mode_display() == "fine-tune, measure only" and run.get_mode_display() == "fine-tune candidates"
    assert f"#{again.pk} fine-tune, measure only" in cast.client_for(cast.viewer).get(
        reverse("agent_detail", args=[agent.pk])).text
    assert "Review the candidates" not in page
    # The divergence it shows is the one the job's page reads.
    [sample] = samples_with_rescore(job)
    assert sample.rescored_by == again.pk
    assert f"{sample.divergence_after:.3f}" in page
    # A run that makes candidates keeps its button and shows no such block.
    page = cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk])).text
    assert "Review the candidates" in page and 'id="finetune-measured"' not in page


def test_alternates_need_candidates(agent):
    from django.core.exceptions import ValidationError

    from scoring import modes

    with pytest.raises(ValidationError) as refused:
        modes.get("finetune").clean_params(agent, {"make_candidates": "0", "alternates": "1"})
    assert "alternates are generated for candidates" in str(refused.value)
    assert modes.get("finetune").clean_params(agent, {"make_candidates": "0"})["make_candidates"] is False
    assert "make_candidates" not in modes.get("finetune").clean_params(agent, {"alternates": "1"})
