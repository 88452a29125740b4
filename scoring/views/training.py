"""Training: jobs sent to the server's /train, sending, retrying and re-scoring.

Agents whose training target is none (export only) are not offered in the
send form; the page says so and links to their JSONL export instead.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import path
from django.views.decorators.http import require_POST

from scoring import outbox
from scoring.access import get_train_job_for_user, require_perm
from scoring.engine.rescore import rescore, samples_with_rescore
from scoring.followups import Followups
from scoring.models import Agent, Candidate, TrainJob
from scoring.models.training import label_senders
from scoring.tasks.enqueue import enqueue_on_commit

TEMPLATE = "scoring/training_job_detail.html"


class SendForm(forms.Form):
    # Every agent, not only those that train: posting an export-only one
    # gets the reason, not "select a valid choice".
    agent = forms.ModelChoiceField(queryset=Agent.objects.all(), empty_label=None)

    def clean_agent(self):
        agent = self.cleaned_data["agent"]
        if not outbox.sends_training(agent):
            raise forms.ValidationError(outbox.no_training_target_message(agent))
        return agent


def _agents_with_waiting():
    """Agents with how many approved candidates wait to be sent: one query."""
    waiting = (
        Candidate.objects.filter(agent=OuterRef("pk"))
        .waiting_for_training()
        .order_by()
        .values("agent")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Agent.objects.annotate(
        waiting=Coalesce(Subquery(waiting, output_field=IntegerField()), Value(0))
    ).only("id", "name", "training_target")


def train_job_list(request, send_form=None):
    require_perm(request, "scoring.view_trainjob")
    jobs = TrainJob.objects.select_related("agent", "created_by").annotate(sample_count=Count("samples"))
    page = Paginator(jobs.order_by("-created_at"), 50).get_page(request.GET.get("page"))
    page.object_list = label_senders(page.object_list)
    context = {"page": page, "any_active": any(job.is_active for job in page.object_list)}
    if request.htmx:
        return render(request, "scoring/training_job_list.html#jobs", context)

    agents = list(_agents_with_waiting())
    sending = [a for a in agents if outbox.sends_training(a)]
    if send_form is None:
        chosen = request.GET.get("agent", "")
        initial = next((a for a in sending if str(a.pk) == chosen), None)
        initial = initial or next((a for a in sending if a.waiting), None)
        send_form = SendForm(initial={"agent": initial.pk if initial else None})
    context.update(
        agents=agents,
        sending_agents=sending,
        export_only=[
            (a, outbox.no_training_target_message(a)) for a in agents if not outbox.sends_training(a)
        ],
        send_form=send_form,
        can_send=request.user.has_perm("scoring.send_training"),
    )
    return render(request, "scoring/training_job_list.html", context)


def train_send(request):
    if request.method != "POST":
        # The URL a refused send was shown at (the list with the form's error): back to the list.
        return redirect("train_job_list")
    require_perm(request, "scoring.view_trainjob", "scoring.send_training")
    form = SendForm(request.POST)
    job = _send(form, request.user) if form.is_valid() else None
    if job is None:
        return train_job_list(request, send_form=form)
    sending = enqueue_on_commit(Followups(train_jobs=[job.pk]))
    n = job.samples.count()
    messages.success(request, f"Sent {n} approved sample{pluralize(n)} of {job.agent.name} as {job}.")
    _warn_if_not_queued(request, sending, job)
    return redirect("train_job_detail", job.pk)


def _warn_if_not_queued(request, sending, job):
    if sending.failed:
        messages.warning(request, outbox.broker_down_message(job))


def _send(form, by):
    """The new job, or None with the reason on the form."""
    agent = form.cleaned_data["agent"]
    try:
        job = outbox.send_to_training(agent, by)
    except outbox.NoTrainingTarget as e:  # switched to export only since the form was cleaned
        form.add_error("agent", e)
        return None
    if job is None:
        form.add_error("agent", outbox.nothing_to_send_message(agent))
    return job


def train_job_detail(request, pk):
    job = get_train_job_for_user(request, pk)
    context = _status_context(request, job)
    if request.htmx:
        # The poll that sees the job end also brings its samples (now trained,
        # or approved again), swapped out of band; so does each poll while a
        # re-score runs (its runs' states, the samples' divergence after).
        if not job.is_active:
            context.update(_samples_context(job))
        return render(request, f"{TEMPLATE}#status", context)
    context.update(_samples_context(job))
    return render(request, TEMPLATE, context)


def _samples_context(job):
    samples = samples_with_rescore(job)
    return {
        "samples": samples,
        "any_edited": any(s.candidate.is_edited for s in samples),
        "rescore_runs": list(job.rescore_runs.select_related("snapshot").order_by("-created_at")),
    }


@require_POST
def train_job_retry(request, pk):
    job = get_train_job_for_user(request, pk, "scoring.send_training")
    was_failed = job.status == TrainJob.Status.FAILED
    try:
        result = outbox.retry(job, by=request.user)
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
        return redirect("train_job_detail", job.pk)
    if result is None:
        messages.warning(request, "Nothing to resend: none of this job's candidates is still approved and unsent.")
        return redirect("train_job_detail", job.pk)
    sending = enqueue_on_commit(Followups(train_jobs=[result.pk]))
    if not was_failed:
        messages.success(request, f"Sending {job} now, with the same Idempotency-Key.")
    else:
        messages.success(request, f"Sent the still-approved candidates again as {result}.")
    _warn_if_not_queued(request, sending, result)
    return redirect("train_job_detail", result.pk)


@require_POST
def train_job_cancel(request, pk):
    """Stop a job no server has yet (TrainJob.can_cancel): its candidates stay approved."""
    job = get_train_job_for_user(request, pk, "scoring.send_training")
    if job.cancel(request.user):
        messages.success(request, f"Cancelled {job}: it will not be sent. Its candidates are still approved and "
                                  "can be sent in a new job.")
    else:
        job.refresh_from_db()
        messages.error(request, f"Not cancelled: {job} is {job.get_status_display()} now, and only a job waiting "
                                "to be sent can be (one being sent may already be on the server).")
    return redirect("train_job_detail", job.pk)


@require_POST
def train_job_rescore(request, pk):
    job = get_train_job_for_user(request, pk, "scoring.start_run")
    try:
        runs = rescore(job, by=request.user)
    except ValidationError as e:
        messages.error(request, "Not re-scored: " + " ".join(e.messages))
        return redirect("train_job_detail", job.pk)
    enqueue_on_commit(Followups(runs=[r.pk for r in runs]))
    names = ", ".join(f"#{r.pk}" for r in runs)
    messages.success(
        request,
        f"Started fine-tune run{pluralize(len(runs))} {names} on the samples' snapshot{pluralize(len(runs))}.",
    )
    return redirect("train_job_detail", job.pk)


def _status_context(request, job):
    label_senders([job])
    return {
        "job": job,
        "sample_count": job.samples.count(),
        "can_send": request.user.has_perm("scoring.send_training"),
        "can_rescore": request.user.has_perm("scoring.start_run"),
        # The page keeps polling while a re-score runs, to show what it found.
        "rescoring": job.rescore_runs.active().exists(),
    }


urlpatterns = [
    path("training/", train_job_list, name="train_job_list"),
    path("training/send/", train_send, name="train_send"),
    path("training/<uuid:pk>/", train_job_detail, name="train_job_detail"),
    path("training/<uuid:pk>/retry/", train_job_retry, name="train_job_retry"),
    path("training/<uuid:pk>/cancel/", train_job_cancel, name="train_job_cancel"),
    path("training/<uuid:pk>/rescore/", train_job_rescore, name="train_job_rescore"),
]
