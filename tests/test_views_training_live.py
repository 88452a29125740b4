"""The training job page stays in step with its job (issue 12, defect 4): the
poll that sees the job end brings the samples' new statuses with it."""

from candidate_factory import make_approved
from django.urls import reverse

from scoring.models import TrainJob
from scoring.outbox import send_to_training


def test_the_last_poll_brings_the_samples_new_statuses(cast, agent):
    make_approved(agent, 2)
    job = send_to_training(agent, cast.operator)
    client = cast.client_for(cast.viewer)
    url = reverse("train_job_detail", args=[job.pk])

    page = client.get(url).text
    assert page.count('id="job-samples"') == 1 and "hx-swap-oob" not in page
    # While the job is active the poll carries the status only.
    assert 'id="job-samples"' not in client.get(url, HTTP_HX_REQUEST="true").text

    job.mark_accepted("job-1")
    job.record_progress(TrainJob.Status.SUCCEEDED, {"status": "succeeded"})
    fragment = client.get(url, HTTP_HX_REQUEST="true").text

    assert '<section id="job-samples" hx-swap-oob="true">' in fragment
    samples = fragment[fragment.index('id="job-samples"'):]
    assert samples.count(">trained</span>") == 2
    assert ">approved</span>" not in samples
    assert "hx-trigger" not in fragment  # polling stops with the job
