"""Scoring runs: the list, one run's live progress, starting and cancelling."""

import re
from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Sum
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_POST

from scoring import modes
from scoring.access import get_run_for_user, get_snapshot_for_user, require_perm
from scoring.engine import start_run
from scoring.filters import RunFilter, agent_choices, filter_notice, filtered, mode_choices, typed_choices, typed_values
from scoring.followups import Followups
from scoring.forms import StartRunForm
from scoring.models import ScoreCall, ScoringRun, TrainJob
from scoring.models.runs import Mode, RunStatus, label_origins
from scoring.modes import estimate
from scoring.tasks.enqueue import enqueue_on_commit

from . import display
from .snapshots import render_snapshot_page


def run_list(request):
    require_perm(request, "scoring.view_scoringrun")
    runs = ScoringRun.objects.select_related("agent", "snapshot", "created_by")
    filterset = RunFilter(request.GET or None, queryset=runs)
    page = Paginator(filtered(filterset), 50).get_page(request.GET.get("page"))
    page.object_list = label_origins(page.object_list)
    for run in page.object_list:
        _note_keys(run)
        run.provisional = modes.get(run.mode).total_is_provisional(run)
    selected = typed_values(filterset)
    return render(
        request,
        "scoring/run_list.html",
        {
            "page": page,
            "form": filterset.form,
            "agent_choices": agent_choices(selected["agent"]),
            "statuses": typed_choices(RunStatus.choices, selected["status"]),
            "modes": typed_choices(mode_choices(), selected["mode"]),
            "selected": selected,
            **filter_notice(request, filterset),
        },
    )


@require_POST
def run_start(request, snapshot_id):
    require_perm(request, "scoring.start_run")
    snapshot = get_snapshot_for_user(request, snapshot_id)

    form = StartRunForm(request.POST, snapshot=snapshot)
    if not form.is_valid():
        # The form comes back with what was sent and its errors beside the fields.
        return render_snapshot_page(request, snapshot, form)

    try:
        with transaction.atomic():
            run = start_run(snapshot, form.cleaned_data["mode"], params=form.params, by=request.user)
            sending = enqueue_on_commit(Followups(runs=[run.pk]))
    except ValidationError as e:
        form.add_plan_error(e)
        return render_snapshot_page(request, snapshot, form)

    _report_started(request, run, sending)
    return redirect("run_detail", run.pk)


@require_POST
def run_exact_top(request, pk):
    """Score an estimate run's top N memories exactly: a full run of their keys
    (N+1 calls) on the same snapshot, naming the estimate in source_run."""
    source = get_run_for_user(request, pk, "scoring.start_run", "scoring.view_cellscore")
    if source.mode != Mode.ESTIMATE or source.status not in estimate.FINISHED:
        messages.error(request, "Exact run not started: only a finished estimate run has top memories to check.")
        return redirect("run_detail", source.pk)
    try:
        top = int(request.POST.get("top", ""))
    except ValueError:
        top = None
    try:
        if top is None:
            raise ValidationError({"top": "must be a whole number"})
        with transaction.atomic():
            keys = estimate.top_keys(source, top)
            run = start_run(source.snapshot, Mode.FULL, params={"keys": keys, "source_run": source.pk},
                            by=request.user)
            sending = enqueue_on_commit(Followups(runs=[run.pk]))
    except ValidationError as e:
        _report_errors(request, e.message_dict if hasattr(e, "error_dict") else {"": e.messages},
                       what="Exact run not started.")
        return redirect("run_detail", source.pk)
    _report_started(request, run, sending)
    return redirect("run_detail", run.pk)


def _report_started(request, run, sending):
    if sending.failed:
        messages.warning(request, f"{run} is saved and queued ({run.calls_total} score calls), but the task "
                                  f"queue (broker) cannot be reached: it will start when the broker is back.")
    else:
        messages.success(request, f"Started {run}: {run.calls_total} score calls queued.")


def _report_errors(request, errors, what="Run not started."):
    """One message per field error, naming the field, for the page it returns to."""
    for field, problems in errors.items():
        for problem in problems:
            label = "" if field in ("", "__all__") else f"{field}: "
            messages.error(request, f"{what} {label}{problem}")


def run_detail(request, pk):
    run = get_run_for_user(request, pk)
    return render(request, "scoring/run_detail.html", _progress_context(request, run))


def run_progress(request, pk):
    """The progress fragment that the run page polls while the run is active."""
    run = get_run_for_user(request, pk)
    if not request.htmx:
        return redirect("run_detail", run.pk)
    return render(request, "scoring/run_detail.html#progress", _progress_context(request, run))


@require_POST
def run_cancel(request, pk):
    run = get_run_for_user(request, pk, "scoring.start_run")
    if run.cancel(by=request.user):
        messages.success(request, f"Cancelled {run}.")
    else:
        messages.info(request, f"{run} had already ended ({run.get_status_display()}).")
    if request.htmx:
        run.refresh_from_db()
        return render(request, "scoring/run_detail.html#progress", _progress_context(request, run))
    return redirect("run_detail", run.pk)


@require_POST
def run_retry(request, pk):
    """Send a run's failed calls again (ScoringRun.retry_failed), to workers."""
    return _send_calls_again(
        request, pk, lambda run: run.retry_failed(by=request.user, forget=modes.get(run.mode).unshown_when_none),
        none="{run} has no failed calls to send again ({status}).",
        broker_down="{again} failed calls of {run} are queued again",
        sending="Sending the {again} failed call{s} of {run} again.",
    )


@require_POST
def run_resume(request, pk):
    """Send a cancelled run's unfinished calls (ScoringRun.resume), to workers."""
    return _send_calls_again(
        request, pk, lambda run: run.resume(by=request.user),
        none="{run} has no calls left to send ({status}).",
        broker_down="{run} is queued again with {again} calls left",
        sending="Resuming {run}: {again} call{s} left to send.",
    )


def _send_calls_again(request, pk, put_back, *, none, broker_down, sending):
    """Put a run's calls back to pending (`put_back(run)`: how many) and send
    the run to workers once that commits, saying what happened in words."""
    run = get_run_for_user(request, pk, "scoring.start_run")
    with transaction.atomic():
        again = put_back(run)
        queued = enqueue_on_commit(Followups(runs=[run.pk])) if again else None
    words = {"run": run, "again": again, "s": "s" if again != 1 else "", "status": run.get_status_display()}
    if not again:
        messages.info(request, none.format(**words))
    elif queued.failed:
        messages.warning(request, broker_down.format(**words) + ", but the task queue (broker) cannot be reached: "
                                                               "they will be sent when it is back.")
    else:
        messages.success(request, sending.format(**words))
    return redirect("run_detail", run.pk)


# Numbers in an error that tell its calls apart (a server's "call 101", "after
# 4 attempts", a request id), not an HTTP status after "HTTP ".
CALL_NUMBERS = re.compile(r"(?<!HTTP )\b\d+\b")
FAILED_GROUPS_SHOWN = 20


def failed_call_groups(run):
    """The run's failed calls grouped by their error with its numbers left
    out, so 200 timeouts read as one line even where each names its call:
    [{"error": the first one's, "count", "varied": whether they differ}], most first."""
    groups = {}
    errors = ScoreCall.objects.filter(run=run, status=ScoreCall.Status.FAILED).order_by("seq").values_list(
        "error", flat=True)
    for error in errors:
        group = groups.setdefault(CALL_NUMBERS.sub("N", error), {"error": error, "count": 0, "varied": False})
        group["count"] += 1
        group["varied"] |= error != group["error"]
    return sorted(groups.values(), key=lambda g: (-g["count"], g["error"]))[:FAILED_GROUPS_SHOWN]


def _progress_context(request, run):
    failed_calls = failed_call_groups(run)
    label_origins([run])
    _note_keys(run)
    mode = modes.get(run.mode)
    return {
        "run": run,
        "mode": mode,
        # A re-score run belongs to the training job that started it (TrainJob.rescore_runs).
        "train_job": TrainJob.objects.filter(rescore_runs=run).first(),
        # The mode's own block on the page (ScoringMode.detail_template), or None.
        "detail_template": mode.detail_template,
        "detail": mode.detail_context(run) if mode.detail_template else {},
        # "About this run" is swapped with the progress (out of band), so
        # its times and findings never lag behind the bar.
        "params": _run_params(run, mode),
        "findings": display.run_findings(run),
        "failed_calls": failed_calls,
        "timing": run_timing(run, timezone.now()),
        # The total may still grow (a groups run's stage 2): said beside it.
        "provisional": mode.total_is_provisional(run),
        "work": work_saved(run),
        "can_cancel": run.is_active and request.user.has_perm("scoring.start_run"),
        "can_retry": run.status in (RunStatus.PARTIAL, RunStatus.FAILED) and bool(run.calls_failed)
        and request.user.has_perm("scoring.start_run"),
        # Calls a cancelled run never finished (pending, or in flight when it stopped).
        "left_to_resume": run.calls.unfinished().count() if run.status == RunStatus.CANCELLED
        and request.user.has_perm("scoring.start_run") else 0,
        # Fine-tune runs have candidates instead.
        "has_heatmap": mode.has_heatmap,
    }


# Memory keys a run's parameters name before "and N more" (an estimate's exact
# top N is 10 by default; a list of hundreds would push the page down).
KEYS_SHOWN = 50


def _run_params(run, mode):
    """display.run_params, but the memory keys of a run of some memories
    (full mode's `keys`) spelled out, not counted ("10 items")."""
    params = display.run_params(run, mode)
    if not run.only_keys:
        return params
    keys = run.only_keys
    shown = ", ".join(keys[:KEYS_SHOWN]) + (f" and {len(keys) - KEYS_SHOWN} more" if len(keys) > KEYS_SHOWN else "")
    label = mode.label("keys")
    return [(name, shown if name == label else value) for name, value in params]


def _note_keys(run):
    """run.only_keys: the keys a run of some memories scored (full mode's
    `keys`), else None; a template's run.params.keys would be dict.keys()."""
    run.only_keys = (run.params or {}).get("keys")
    return run


def work_saved(run):
    """Tokens the server was asked to compute against the naive cost (every
    call over its whole prompt), and those it says it ran the model over and
    served from its cache (None where it does not say); None while no call
    has answered, or for a run whose calls predate the counts.

    The cache may serve positions that were asked for (a prompt scored
    before, the same baseline in another run): what was computed is what the
    server says, not what was asked less what was left out."""
    totals = ScoreCall.objects.filter(run=run).aggregate(
        naive=Sum("prompt_tokens"), cached=Sum("cached_tokens"), cached_reported=Count("cached_tokens"),
        computed=Sum("computed_tokens"), computed_reported=Count("computed_tokens"),
    )
    naive = totals["naive"] or 0
    if not naive:
        return None
    asked = run.tokens_scored
    return {
        "asked": asked,
        "naive": naive,
        "saved_percent": round(100 * (1 - asked / naive)) if asked <= naive else 0,
        "cached": totals["cached"] if totals["cached_reported"] else None,
        "computed": totals["computed"] if totals["computed_reported"] else None,
    }


def run_timing(run, now):
    """Elapsed time and, while active, the time left at the rate so far. A
    run whose failed calls were sent again counts from then (the time it
    sat ended before is no one's work), at the rate of the calls since.

    A baseline is sent alone, before the calls that need it (so that they
    find its prefix cached), and those then go several at once: the rate
    starts when the first call to finish was such a baseline, else a full
    matrix read its baseline's time as every call's."""
    begun = run.retried_at or run.started_at or run.created_at
    end = run.finished_at if not run.is_active and run.finished_at else now
    elapsed = max(end - begun, timedelta(0))
    remaining = None
    if run.is_active and run.started_at and run.calls_total:
        since = run.calls.filter(finished_at__gte=begun)
        finished = since.count() if run.retried_at else run.calls_done + run.calls_failed
        start, counted = begun, finished
        first = since.order_by("finished_at", "pk").values_list("pk", "finished_at").first()
        if first and run.calls.filter(baseline_id=first[0]).exists():
            start, counted = first[1], finished - 1
        if counted:
            rate = counted / max((now - start).total_seconds(), 1e-3)
            left = run.calls_total - run.calls_done - run.calls_failed
            remaining = timedelta(seconds=round(left / rate))
    return {"elapsed": _round(elapsed), "remaining": remaining, "percent": round(run.progress * 100),
            "since_retry": run.retried_at is not None}


def _round(delta):
    return timedelta(seconds=round(delta.total_seconds()))


urlpatterns = [
    path("runs/", run_list, name="run_list"),
    path("snapshots/<int:snapshot_id>/runs/new/", run_start, name="run_start"),
    path("runs/<int:pk>/", run_detail, name="run_detail"),
    path("runs/<int:pk>/progress/", run_progress, name="run_progress"),
    path("runs/<int:pk>/cancel/", run_cancel, name="run_cancel"),
    path("runs/<int:pk>/retry/", run_retry, name="run_retry"),
    path("runs/<int:pk>/resume/", run_resume, name="run_resume"),
    path("runs/<int:pk>/exact-top/", run_exact_top, name="run_exact_top"),
]
