"""Review: the queue, and what a reviewer does on a candidate's page (decide, comment, edit).

The page itself (its contexts and forms), the list and the export are in
views/candidates.py.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.views.decorators.http import require_POST
from django_htmx.http import reswap, retarget

from scoring.access import get_candidate_for_user, require_perm
from scoring.client import InferenceError
from scoring.editing import edit_and_approve
from scoring.models import Agent, Candidate
from scoring.models.review import DECISION_VERBS

from .candidates import (
    TEMPLATE,
    CommentForm,
    DecideForm,
    EditForm,
    agent_filter,
    page_context,
)


def _queue_url(agent):
    url = reverse("review_queue")
    return f"{url}?agent={agent.pk}" if agent else url


def review_queue(request):
    """The next candidate for this reviewer, reserved for them while they look."""
    require_perm(request, "scoring.view_candidate")
    agent = agent_filter(request)
    can_review = request.user.has_perm("scoring.review_candidate")

    candidate = None
    # Another reviewer may reserve the same candidate between our read and our
    # update; then the next one is taken. A few tries are plenty.
    for _ in range(5):
        candidate = Candidate.objects.without_ids().next_for(request.user, agent)
        if candidate is None or not can_review or candidate.reserve(request.user):
            break
        candidate = None

    held = Candidate.objects.held_by_others(request.user).without_ids().select_related("reserved_by")
    if agent:
        held = held.filter(agent=agent)
    queue = {
        "agent": agent,
        "agents": Agent.objects.only("id", "name"),
        "held_by_others": list(held.order_by("reserved_until")[:10]),
    }
    if candidate is None:
        pending = Candidate.objects.pending()
        if agent:
            pending = pending.filter(agent=agent)
        queue["pending_count"] = pending.count()
        return render(request, "scoring/review_queue.html", {"queue": queue})

    candidate = get_candidate_for_user(request, candidate.pk)
    return render(request, TEMPLATE, page_context(request, candidate, queue=queue))


@require_POST
def candidate_decide(request, pk):
    candidate = get_candidate_for_user(request, pk)
    require_perm(request, "scoring.review_candidate")
    form = DecideForm(request.POST)
    if form.is_valid():
        try:
            candidate.decide(request.user, form.cleaned_data["decision"], form.cleaned_data["comment"])
        except ValidationError as e:
            form.add_error(None, e)
    if form.errors:
        return _form_errors(request, candidate, "decide_form", decide_form=form)

    if request.htmx:
        return _decisions_with_fresh_form(request, candidate, "decide_form")
    verb = DECISION_VERBS[form.cleaned_data["decision"]]
    messages.success(request, f"You {verb} candidate #{candidate.pk}.")
    return redirect(_queue_url(agent_filter(request)))


@require_POST
def candidate_comment(request, pk):
    candidate = get_candidate_for_user(request, pk)
    require_perm(request, "scoring.review_candidate")
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            candidate.add_comment(request.user, form.cleaned_data["text"])
        except ValidationError as e:
            form.add_error(None, e)
    if form.errors:
        return _form_errors(request, candidate, "comment_form", comment_form=form)
    if request.htmx:
        return _decisions_with_fresh_form(request, candidate, "comment_form")
    messages.success(request, "Comment added.")
    return redirect("candidate_detail", candidate.pk)


@require_POST
def candidate_edit(request, pk):
    candidate = get_candidate_for_user(request, pk)
    require_perm(request, "scoring.review_candidate")
    form = EditForm(request.POST)
    if form.is_valid():
        try:
            edit_and_approve(candidate, request.user, form.cleaned_data["text"])
        except ValidationError as e:
            form.add_error(None, e)
        except InferenceError as e:
            form.add_error("text", f"The inference server could not tokenize the text: {e}")
    if form.errors:
        return _form_errors(request, candidate, "edit_form", edit_form=form)
    messages.success(request, f"You edited and approved candidate #{candidate.pk}.")
    return redirect(_queue_url(agent_filter(request)))


def _form_errors(request, candidate, partial, **forms_):
    """A form with errors: in place of the form for htmx, else the whole page."""
    if request.htmx:
        context = page_context(request, candidate, **forms_)
        response = render(request, f"{TEMPLATE}#{partial}", context)
        return reswap(retarget(response, f"#{partial.replace('_', '-')}"), "outerHTML")
    return render(request, TEMPLATE, page_context(request, candidate, **forms_))


def _decisions_with_fresh_form(request, candidate, partial):
    """The updated decisions panel, plus an empty form swapped out of band."""
    candidate.refresh_from_db()
    context = page_context(request, candidate)
    context["oob"] = True
    return HttpResponse(
        render_to_string(f"{TEMPLATE}#decisions", context, request)
        + render_to_string(f"{TEMPLATE}#{partial}", context, request)
    )


urlpatterns = [
    path("review/", review_queue, name="review_queue"),
    path("candidates/<int:pk>/decide/", candidate_decide, name="candidate_decide"),
    path("candidates/<int:pk>/comment/", candidate_comment, name="candidate_comment"),
    path("candidates/<int:pk>/edit/", candidate_edit, name="candidate_edit"),
]
