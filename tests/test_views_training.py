"""Training pages: the job list and its send form, a job, retry and re-score."""

import pytest
from candidate_factory import make_approved, make_candidate
from django.test import Client
from django.urls import reverse

from scoring import outbox
from scoring.engine import run_inline
from scoring.followups import Followups
from scoring.models import Activity, Agent, Candidate, ScoringRun, TrainJob
from scoring.models.runs import Mode
from scoring.outbox import send_to_training
from scoring.tasks.enqueue import Sending
from scoring.views import training as training_views
from tests.test_training_send import broker_at_closed_port

XSS = "<script>alert('x')</script>"


def send(client, agent):
    return client.post(reverse("train_send"), {"agent": agent.pk})


def detail_url(job):
    return reverse("train_job_detail", args=[job.pk])


def test_it_lists_jobs_and_how_many_wait(cast, agent):
    make_approved(agent, 2)
    job = send_to_training(agent, cast.operator)
    make_approved(agent, 3)

    r = cast.client_for(cast.viewer).get(reverse("train_job_list"))

    assert r.status_code == 200
    page = r.content.decode()
    assert "poc — 3 approved waiting" not in page  # viewers get no form
    assert "poc: 3 approved waiting" in page and "needs the operator role" in page
    assert str(job) in page and "otto" in page
    r = cast.client_for(cast.operator).get(reverse("train_job_list"))
    assert "poc — 3 approved waiting" in r.content.decode()


def test_it_polls_the_job_list_while_jobs_are_active(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    client = cast.client_for(cast.viewer)

    r = client.get(reverse("train_job_list"), HTTP_HX_REQUEST="true")
    page = r.content.decode()
    assert 'id="jobs"' in page and 'hx-trigger="every 3s"' in page
    assert "<html" not in page and "topbar" not in page

    job.mark_accepted("job-1")
    TrainJob.objects.filter(pk=job.pk).update(status=TrainJob.Status.SUCCEEDED)
    r = client.get(reverse("train_job_list"), HTTP_HX_REQUEST="true")
    assert "hx-trigger" not in r.content.decode()


def test_it_marks_unknown_jobs_as_needing_attention(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    TrainJob.objects.filter(pk=job.pk).update(status=TrainJob.Status.UNKNOWN, last_error="timed out")
    client = cast.client_for(cast.viewer)
    assert "needs attention" in client.get(reverse("train_job_list")).content.decode()
    page = client.get(detail_url(job)).content.decode()
    assert "needs attention" in page and "same Idempotency-Key" in page and "timed out" in page


def test_it_lets_operators_send(cast, agent):
    candidates = make_approved(agent, 2)
    r = send(cast.client_for(cast.operator), agent)
    job = TrainJob.objects.get()
    assert r.status_code == 302 and r["Location"] == detail_url(job)
    assert job.created_by == cast.operator
    assert set(job.samples.values_list("candidate_id", flat=True)) == {c.pk for c in candidates}


@pytest.mark.parametrize("role", ["viewer", "reviewer", "outsider"])
def test_it_forbids_sending_to_others(cast, agent, role):
    make_approved(agent, 1)
    assert send(cast.client_for(getattr(cast, role)), agent).status_code == 403
    assert not TrainJob.objects.exists()


def test_it_says_when_nothing_is_approved(cast, agent):
    make_candidate(agent)
    r = send(cast.client_for(cast.operator), agent)
    assert r.status_code == 200
    assert "Nothing to send: no approved candidates of poc are waiting." in r.content.decode()
    assert not TrainJob.objects.exists()


def test_it_sends_once_on_a_double_click(cast, agent):
    make_approved(agent, 2)
    client = cast.client_for(cast.operator)
    assert send(client, agent).status_code == 302
    assert "Sent 2 approved samples of poc" in client.get(reverse("train_job_list")).text
    assert send(client, agent).status_code == 200
    assert TrainJob.objects.count() == 1


def test_the_send_url_opened_again_goes_back_to_the_list(cast, agent):
    response = cast.client_for(cast.operator).get(reverse("train_send"))
    assert response.status_code == 302 and response["Location"] == reverse("train_job_list")


def test_it_refuses_a_missing_agent(cast, agent):
    r = cast.client_for(cast.operator).post(reverse("train_send"), {"agent": 999999})
    assert r.status_code == 200 and "Select a valid choice" in r.content.decode()


def test_it_enforces_csrf(cast, agent):
    make_approved(agent, 1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.operator)
    assert send(client, agent).status_code == 403
    assert not TrainJob.objects.exists()

    client.get(reverse("train_job_list"))
    r = client.post(reverse("train_send"),
                    {"agent": agent.pk, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert r.status_code == 302 and TrainJob.objects.count() == 1
    job = TrainJob.objects.get()
    outbox.dispatch(job.pk)
    job.refresh_from_db()
    job.mark_failed("no")
    assert client.post(reverse("train_job_retry", args=[job.pk])).status_code == 403
    assert client.post(reverse("train_job_rescore", args=[job.pk])).status_code == 403
    assert TrainJob.objects.count() == 1


def test_it_shows_a_job_with_its_samples(cast, agent):
    c = make_candidate(agent, status=Candidate.Status.APPROVED, response_text=f"Hi {XSS}")
    job = send_to_training(agent, cast.operator)
    r = cast.client_for(cast.viewer).get(detail_url(job))
    page = r.content.decode()
    assert r.status_code == 200
    assert reverse("candidate_detail", args=[c.pk]) in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert 'hx-trigger="every 2s"' in page  # pending: the status polls
    assert "Retry" not in page  # not for viewers, not while pending


def test_it_serves_the_job_status_as_a_fragment(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    job.mark_failed(f"bad {XSS}")
    r = cast.client_for(cast.operator).get(detail_url(job), HTTP_HX_REQUEST="true")
    page = r.content.decode()
    assert 'id="job-status"' in page and "<html" not in page
    assert "Retry in a new job" in page and "hx-trigger" not in page
    assert "<script>alert" not in page


def test_it_forbids_outsiders_the_pages(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    client = cast.client_for(cast.outsider)
    assert client.get(reverse("train_job_list")).status_code == 403
    assert client.get(detail_url(job)).status_code == 403


def test_it_retries_a_failed_job_for_operators(cast, agent):
    candidates = make_approved(agent, 2)
    job = send_to_training(agent, cast.operator)
    job.mark_failed("rejected by the server")

    for role in ("viewer", "reviewer"):
        r = cast.client_for(getattr(cast, role)).post(reverse("train_job_retry", args=[job.pk]))
        assert r.status_code == 403
    assert TrainJob.objects.count() == 1

    r = cast.client_for(cast.operator).post(reverse("train_job_retry", args=[job.pk]))
    new_job = TrainJob.objects.exclude(pk=job.pk).get()
    assert r.status_code == 302 and r["Location"] == detail_url(new_job)
    assert set(new_job.samples.values_list("candidate_id", flat=True)) == {c.pk for c in candidates}

    # Retrying the failed job again finds nothing left to send.
    r = cast.client_for(cast.operator).post(reverse("train_job_retry", args=[job.pk]), follow=True)
    assert "Nothing to resend" in r.content.decode()
    assert TrainJob.objects.count() == 2


def test_it_resends_an_unknown_job_with_the_same_key(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    TrainJob.objects.filter(pk=job.pk).update(status=TrainJob.Status.UNKNOWN)
    r = cast.client_for(cast.operator).post(reverse("train_job_retry", args=[job.pk]), follow=True)
    assert "same Idempotency-Key" in r.content.decode()
    assert TrainJob.objects.count() == 1
    assert Activity.objects.filter(verb="retried", actor=cast.operator).exists()


def test_it_refuses_to_retry_a_job_that_is_fine(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    r = cast.client_for(cast.operator).post(reverse("train_job_retry", args=[job.pk]), follow=True)
    assert "Only failed jobs" in r.content.decode()
    assert TrainJob.objects.count() == 1


def test_it_rescores_a_trained_job_and_shows_the_new_divergence(cast, agent, ref):
    c = make_candidate(agent, status=Candidate.Status.APPROVED, divergence=3.0)
    job = send_to_training(agent, cast.operator)
    client = cast.client_for(cast.operator)

    r = client.post(reverse("train_job_rescore", args=[job.pk]), follow=True)
    assert "Re-score after the training succeeded" in r.content.decode()
    assert not ScoringRun.objects.exists()

    outbox.dispatch(job.pk)
    TrainJob.objects.filter(pk=job.pk).update(status=TrainJob.Status.SUCCEEDED)
    for role in ("viewer", "reviewer"):
        assert cast.client_for(getattr(cast, role)).post(
            reverse("train_job_rescore", args=[job.pk])).status_code == 403
    assert not ScoringRun.objects.exists()

    r = client.post(reverse("train_job_rescore", args=[job.pk]), follow=True)
    run = ScoringRun.objects.get()
    assert f"Started fine-tune run #{run.pk} on the samples&#x27; snapshot." in r.text
    assert run.mode == Mode.FINETUNE and run.snapshot_id == c.snapshot_id
    assert run.created_by == cast.operator
    assert list(job.rescore_runs.all()) == [run]

    run_inline(run)
    page = client.get(detail_url(job)).content.decode()
    assert reverse("run_detail", args=[run.pk]) in page
    sample = client.get(detail_url(job)).context["samples"][0]
    assert sample.divergence_after is not None
    assert sample.change == pytest.approx(sample.divergence_after - 3.0)


@pytest.fixture
def enqueued(monkeypatch):
    """What the training views hand to enqueue_on_commit, in order."""
    sent = []

    def record(followups):
        sent.append(followups)
        return Sending(sent=True)

    monkeypatch.setattr(training_views, "enqueue_on_commit", record)
    return sent


def test_it_asks_for_a_dispatcher_after_sending_and_retrying(cast, agent, enqueued):
    make_approved(agent, 1)
    client = cast.client_for(cast.operator)
    send(client, agent)
    job = TrainJob.objects.get()
    assert enqueued == [Followups(train_jobs=[job.pk])]

    job.mark_failed("rejected by the server")
    client.post(reverse("train_job_retry", args=[job.pk]))
    new_job = TrainJob.objects.exclude(pk=job.pk).get()
    assert enqueued[1:] == [Followups(train_jobs=[new_job.pk])]

    TrainJob.objects.filter(pk=new_job.pk).update(status=TrainJob.Status.UNKNOWN)
    client.post(reverse("train_job_retry", args=[new_job.pk]))
    assert enqueued[2:] == [Followups(train_jobs=[new_job.pk])]  # the same job, the same key


def test_it_enqueues_nothing_when_there_is_nothing_to_send(cast, agent, enqueued):
    make_candidate(agent)
    send(cast.client_for(cast.operator), agent)
    assert enqueued == []


def test_it_enqueues_the_rescore_runs(cast, agent, enqueued):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    job.mark_accepted("job-1")
    TrainJob.objects.filter(pk=job.pk).update(status=TrainJob.Status.SUCCEEDED)
    cast.client_for(cast.operator).post(reverse("train_job_rescore", args=[job.pk]))
    assert enqueued == [Followups(runs=[ScoringRun.objects.get().pk])]


# --- an agent with no training target (export only) ---------------------------

def _export_only(agent):
    agent.training_target = Agent.TrainingTarget.NONE
    agent.save(update_fields=["training_target"])
    return agent


def test_it_does_not_offer_an_export_only_agent_and_says_why(cast, agent):
    Agent.objects.create(name="trainer", base_url=agent.base_url, model=agent.model)
    make_approved(_export_only(agent), 2)

    page = cast.client_for(cast.operator).get(reverse("train_job_list")).content.decode()

    assert "trainer — 0 approved waiting" in page
    assert "poc — 2 approved waiting" not in page
    assert "poc has no training target: approved samples are exported as JSONL." in page
    assert reverse("candidate_export") + f"?agent={agent.pk}" in page


def test_it_shows_no_send_form_when_no_agent_trains(cast, agent):
    _export_only(agent)

    page = cast.client_for(cast.operator).get(reverse("train_job_list")).content.decode()

    assert 'id="send-form"' not in page
    assert "poc has no training target" in page


def test_it_refuses_to_send_for_an_export_only_agent(cast, agent, enqueued):
    make_approved(_export_only(agent), 1)

    r = send(cast.client_for(cast.operator), agent)

    assert r.status_code == 200
    assert "poc has no training target: approved samples are exported as JSONL." in r.content.decode()
    assert not TrainJob.objects.exists() and enqueued == []


def test_it_refuses_to_retry_for_an_export_only_agent(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    job.mark_failed("rejected by the server")
    _export_only(agent)

    r = cast.client_for(cast.operator).post(reverse("train_job_retry", args=[job.pk]), follow=True)

    assert "poc has no training target" in r.content.decode()
    assert TrainJob.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_says_the_job_waits_for_the_broker_when_it_is_down(cast, agent):
    make_approved(agent, 1)
    with broker_at_closed_port():
        response = cast.client_for(cast.operator).post(reverse("train_send"), {"agent": agent.pk}, follow=True)
    job = TrainJob.objects.get()
    assert job.status == TrainJob.Status.PENDING
    assert "cannot be reached: it will be sent to the server when the broker is back" in response.text


@pytest.mark.django_db(transaction=True)
def test_a_retry_says_the_job_waits_for_the_broker_when_it_is_down(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    job.mark_failed("rejected by the server")
    with broker_at_closed_port():
        response = cast.client_for(cast.operator).post(reverse("train_job_retry", args=[job.pk]), follow=True)
    again = TrainJob.objects.exclude(pk=job.pk).get()
    assert again.status == TrainJob.Status.PENDING
    assert f"Sent the still-approved candidates again as {again}" in response.text
    assert "cannot be reached: it will be sent to the server when the broker is back" in response.text


def backing_off_job(cast, agent, ref, n=2):
    """A job whose POST the server answered with 500: waiting to be sent again."""
    from scoring.tasks.training import dispatch_train_jobs

    candidates = make_approved(agent, n)
    job = send_to_training(agent, cast.operator)
    ref.control(fail_rate=1.0, fail_endpoints=["train"])
    dispatch_train_jobs()
    job.refresh_from_db()
    assert job.status == TrainJob.Status.PENDING and job.attempts == 1 and job.retry_after
    return job, candidates


def test_a_job_waiting_after_a_failed_attempt_can_be_sent_now(cast, agent, ref):
    """Walkthrough: a job the server kept answering 500 waited out a backoff
    of up to 5 minutes, and its page offered nothing: no way to send it now."""
    job, candidates = backing_off_job(cast, agent, ref)
    page = cast.client_for(cast.operator).get(detail_url(job)).text
    assert "Send now (same key)" in page and "Cancel the job" in page
    assert "not before" in page and "No server has accepted it" in page
    reviewer_page = cast.client_for(cast.reviewer).get(detail_url(job)).text
    assert "Send now" not in reviewer_page and "Cancel the job" not in reviewer_page

    ref.control(fail_rate=0.0)
    r = cast.client_for(cast.operator).post(reverse("train_job_retry", args=[job.pk]), follow=True)
    assert f"Sending {job} now, with the same Idempotency-Key." in r.text
    job.refresh_from_db()
    assert job.retry_after is None and TrainJob.objects.count() == 1
    from scoring.tasks.training import dispatch_train_jobs

    dispatch_train_jobs()
    job.refresh_from_db()
    assert job.status == TrainJob.Status.QUEUED and job.attempts == 2


def test_a_job_no_server_has_can_be_cancelled_and_its_candidates_sent_again(cast, agent, ref):
    job, candidates = backing_off_job(cast, agent, ref)
    url = reverse("train_job_cancel", args=[job.pk])
    for role in ("viewer", "reviewer"):
        assert cast.client_for(getattr(cast, role)).post(url).status_code == 403
    assert cast.client_for(cast.operator).get(url).status_code == 405

    r = cast.client_for(cast.operator).post(url, follow=True)
    assert "it will not be sent. Its candidates are still approved" in r.text
    job.refresh_from_db()
    assert job.status == TrainJob.Status.FAILED
    assert job.last_error == "cancelled by otto before any server accepted it"
    assert Activity.objects.filter(verb="cancelled", actor=cast.operator, target_id=str(job.pk)).exists()
    assert {c.status for c in Candidate.objects.filter(pk__in=[c.pk for c in candidates])} == {"approved"}
    assert not job.samples.filter(live=True).exists()
    # Sent again, in a new job.
    ref.control(fail_rate=0.0)
    again = send_to_training(agent, cast.operator)
    assert set(again.samples.values_list("candidate_id", flat=True)) == {c.pk for c in candidates}


def test_a_job_being_sent_or_unknown_is_not_cancelled(cast, agent):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    for status in (TrainJob.Status.SENDING, TrainJob.Status.UNKNOWN):
        TrainJob.objects.filter(pk=job.pk).update(status=status)
        assert "Cancel the job" not in cast.client_for(cast.operator).get(detail_url(job)).text
        r = cast.client_for(cast.operator).post(reverse("train_job_cancel", args=[job.pk]), follow=True)
        assert "Not cancelled" in r.text and "only a job waiting to be sent can be" in r.text
        job.refresh_from_db()
        assert job.status == status and job.samples.filter(live=True).exists()


def test_it_keeps_polling_while_a_rescore_runs_and_then_shows_what_it_found(cast, agent, ref):
    make_candidate(agent, status=Candidate.Status.APPROVED, divergence=3.0)
    job = send_to_training(agent, cast.operator)
    job.mark_accepted("job-1")
    TrainJob.objects.filter(pk=job.pk).update(status=TrainJob.Status.SUCCEEDED)
    client = cast.client_for(cast.operator)
    client.post(reverse("train_job_rescore", args=[job.pk]))
    run = ScoringRun.objects.get()

    poll = client.get(detail_url(job), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in poll
    assert 'id="job-rescores" hx-swap-oob="true"' in poll and "status-queued" in poll

    run_inline(run)
    poll = client.get(detail_url(job), HTTP_HX_REQUEST="true").content.decode()
    # The last poll: no more polling, the samples' divergence after and the run's end come with it.
    assert "hx-trigger" not in poll
    assert 'id="job-samples" hx-swap-oob="true"' in poll and "after re-score" in poll
    assert "status-queued" not in poll and f'<a href="/runs/{run.pk}/">' in poll


def test_it_shows_what_the_server_says_of_the_job(cast, agent):
    """The server's answer was kept (server_status) but never shown: its
    warning that samples were cut to fit, its progress, what training did."""
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    TrainJob.objects.filter(pk=job.pk).update(
        status=TrainJob.Status.RUNNING, server_job_id="job-1",
        server_status={"status": "running", "progress": {"step": 3, "steps": 20},
                       "warning": f"1 sample(s) had their context cut {XSS}"})
    client = cast.client_for(cast.viewer)

    page = client.get(detail_url(job)).text
    assert "step 3 of 20" in page
    assert "The server warns:</strong> <span class=\"text\">1 sample(s) had their context cut &lt;script&gt;" in page

    TrainJob.objects.filter(pk=job.pk).update(
        status=TrainJob.Status.SUCCEEDED, server_status={
            "status": "succeeded", "progress": {"step": 20, "steps": 20},
            "training": {"steps": 20, "seconds": 65.757, "first_loss": 4.0158, "last_loss": 1.9219}})
    page = client.get(detail_url(job)).text
    assert "step 20 of 20" not in page  # progress is said only while it trains
    training = page.split('id="job-training">')[1].split("</div>")[0]
    assert "20 steps in 65.8 s" in training and "loss 4.016 → 1.922" in training

    # An answer of another shape shows nothing of it, and breaks nothing.
    TrainJob.objects.filter(pk=job.pk).update(server_status={"training": {"steps": "many"}, "warning": ["x"]})
    page = client.get(detail_url(job)).text
    assert 'id="job-training"' not in page and 'id="job-server-warning"' not in page
