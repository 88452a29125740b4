"""Review: the queue, and what a reviewer does on a candidate's page (decide,
comment, edit) or to a selection from the candidate list (bulk decide).

After a decision (approve, reject, skip, or edit and approve) the reviewer
always moves on to the next candidate, and the page says what they decided;
a comment alone keeps them on the page. The page itself (its contexts and
forms) is views/candidate_page.py; the list and the export views/candidates.py.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import reswap, retarget

from scoring.access import get_candidate_for_user, require_perm
from scoring.client import InferenceError
from scoring.editing import edit_and_approve
from scoring.filters import AgentOnlyFilter, agent_choices, filter_problems, row_with_id, typed_values
from scoring.models import Candidate, Review
from scoring.models.candidates import ReversalNeedsConfirmation, decide_each, settling_rule, status_words
from scoring.models.review import DECISION_VERBS
from scoring.roles import holds_candidates

from .candidate_page import TEMPLATE, CommentForm, DecideForm, EditForm, page_context
from .candidates import agent_filter

# A bulk decision covers at most this many candidates (two pages of the list).
BULK_LIMIT = 100
SETTLED = Candidate.SETTLED


def _queue_url(agent, after=None):
    query = "&".join(f"{k}={v}" for k, v in (("agent", agent.pk if agent else None), ("after", after)) if v)
    return reverse("review_queue") + (f"?{query}" if query else "")


def review_queue(request):
    """The next candidate for this reviewer, reserved for them while they look.
    ?after=ID moves on past that candidate (the n key), letting go of it.

    Only members of the reviewer role hold what they open: others (viewers,
    and operators or admins outside that role, who may still decide on a
    candidate's page) look without keeping it from the reviewers."""
    require_perm(request, "scoring.view_candidate")
    filterset = AgentOnlyFilter(request.GET or None)
    problems = filter_problems(filterset)
    agent = None if problems or not filterset.is_bound else filterset.form.cleaned_data.get("agent")
    holds = holds_candidates(request.user)
    queue = _queue_context(request, agent, filterset)
    queue["holds"] = holds
    if problems:
        # Nothing offered, nothing held: not all agents' queue, which the page would seem to say was filtered.
        # Cleared, the queue starts afresh: not past ?after=, which is no filter.
        context = {"queue": queue, "filter_problems": problems, "clear_url": request.path}
        return render(request, "scoring/review_queue.html", context)
    after = _left_behind(request)

    candidate = None
    # Another reviewer may reserve the same candidate between our read and our
    # update; then the next one is taken. A few tries are plenty.
    for _ in range(5):
        candidate = Candidate.objects.for_page().next_for(request.user, agent, after=after)
        if candidate is None or not holds or candidate.reserve(request.user):
            break
        candidate = None
    if candidate is None and after is not None and _still_there(after, request.user, holds):
        messages.info(request, f"No other candidate waits for you: this is still #{after.pk}.")
        candidate = after

    if candidate is None:
        pending = Candidate.objects.pending()
        if agent:
            pending = pending.filter(agent=agent)
        queue["pending_count"] = pending.count()
        return render(request, "scoring/review_queue.html", {"queue": queue})

    return render(request, TEMPLATE, page_context(request, candidate, queue=queue))


def _still_there(after, user, holds):
    """Whether the candidate just left behind may be shown again (taken again
    by one who holds)."""
    return after.reserve(user) if holds else after.status == Candidate.Status.PENDING


def _left_behind(request):
    """The candidate ?after= names, released if this reviewer held it; or None."""
    candidate = row_with_id(Candidate.objects.for_page(), request.GET.get("after", ""))
    if candidate is not None and candidate.reserved_by_id == request.user.pk:
        candidate.release(request.user)
    return candidate


def _queue_context(request, agent, filterset):
    held = Candidate.objects.held_by_others(request.user).without_ids().select_related("reserved_by")
    if agent:
        held = held.filter(agent=agent)
    typed = typed_values(filterset)["agent"]
    return {
        "agent": agent,
        # The agent select keeps what was typed, known or not.
        "agent_choices": agent_choices(typed),
        "selected": typed,
        "held_by_others": list(held.order_by("reserved_until")[:10]),
        "rule": settling_rule(agent) if agent else "",
    }


@require_POST
def candidate_decide(request, pk):
    candidate = get_candidate_for_user(request, pk, "scoring.review_candidate")
    form = DecideForm(request.POST)
    before = candidate.status
    reversal = None
    if form.is_valid():
        decision = form.cleaned_data["decision"]
        try:
            candidate.decide(request.user, decision, form.cleaned_data["comment"], confirm_reversal=form.confirmed,
                             seen_edit=form.seen())
        except ReversalNeedsConfirmation as e:
            form.add_error(None, e)
            reversal = {"decision": decision, "label": Review.Decision(decision).label, "to": e.new_status}
        except ValidationError as e:
            form.add_error(None, e)
    if form.errors:
        return _form_errors(request, candidate, "decide_form", decide_form=form, reversal=reversal)
    decision = form.cleaned_data["decision"]
    return _move_on(request, candidate, f"You {DECISION_VERBS[decision]} candidate #{candidate.pk}", before, decision)


@require_POST
def candidate_comment(request, pk):
    candidate = get_candidate_for_user(request, pk, "scoring.review_candidate")
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            candidate.add_comment(request.user, form.cleaned_data["comment"])
        except ValidationError as e:
            form.add_error(None, e)
    if form.errors:
        return _form_errors(request, candidate, "decide_form", comment_form=form)
    if request.htmx:
        return _decisions_with_fresh_form(request, candidate, "decide_form")
    messages.success(request, "Comment added.")
    return redirect("candidate_detail", candidate.pk)


@require_POST
def candidate_edit(request, pk):
    candidate = get_candidate_for_user(request, pk, "scoring.review_candidate")
    form = EditForm(request.POST)
    before = candidate.status
    reversal = None
    if form.is_valid():
        # Asked before the server tokenizes: a reversal not yet confirmed costs no call.
        after = candidate.status_after_edit(request.user)
        if candidate.is_settled and after != candidate.status and not form.confirmed:
            error = ReversalNeedsConfirmation(candidate, Review.Decision.APPROVE, after)
            form.add_error(None, error)
            reversal = {"decision": "approve", "label": "edit and approve", "to": after}
        else:
            try:
                edit_and_approve(candidate, request.user, form.cleaned_data["text"], confirm_reversal=form.confirmed)
            except ValidationError as e:
                form.add_error(None, e)
            except InferenceError as e:
                form.add_error("text", f"The inference server could not tokenize the text: {e}")
    if form.errors:
        return _form_errors(request, candidate, "edit_form", edit_form=form, edit_reversal=reversal)
    return _move_on(
        request, candidate, f"You edited and approved candidate #{candidate.pk}", before, Review.Decision.APPROVE,
        edited=True,
    )


def _move_on(request, candidate, said, before, decision, *, edited=False):
    """Every decision moves on to the next candidate, saying what it did and
    where the candidate now stands (`before`: its status before the vote)."""
    candidate.refresh_from_db(fields=["status", "edited_at", "edited_by"])
    agent = agent_filter(request)
    then = "Here is the next one." if Candidate.objects.next_for(request.user, agent) else (
        "Nothing else waits for your review."
    )
    reviews = list(candidate.reviews.select_related("reviewer"))
    stands = _where_it_stands(candidate, before, decision, request.user, reviews, edited)
    # An approval that does not count toward the text to be trained is a warning, not a success.
    mine = next((r for r in reviews if r.reviewer_id == request.user.pk), None)
    uncounted = decision == Review.Decision.APPROVE and mine is not None and not candidate.counts_toward(mine)
    (messages.warning if uncounted else messages.success)(request, f"{said}{stands} {then}")
    url = _queue_url(agent)
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _where_it_stands(candidate, before, decision, reviewer, reviews, edited=False):
    """The end of "You approved candidate #5...": what the vote did to its
    status, in one sentence with one colon at most, for every outcome.
    `reviews`: the candidate's, after the vote; `edited`: the vote was an edit
    and approval, which changed the text."""
    status = candidate.status
    if status != before and before in SETTLED:
        return f", which reverses it from {before} to {status_words(status)}."
    if status != before:
        return f": it is now {candidate.get_status_display()}."
    if status != Candidate.Status.PENDING and edited:
        # The outcome stands, but what would be trained is now this text.
        return f": it stays {candidate.get_status_display()}, with your text as the one to be trained."
    if status != Candidate.Status.PENDING:
        return f": it stays {candidate.get_status_display()} (your vote did not change the outcome)."
    # Still pending: how far the reviews have got towards what this vote asked
    # for. Not after a skip, which under blind review reveals no one's votes.
    if decision == Review.Decision.REJECT:
        needed = candidate.agent.rejections_to_settle
        done = sum(r.decision == decision for r in reviews)
        return f": it still awaits review, with {done} of {needed} rejection{pluralize(needed)}."
    if decision != Review.Decision.APPROVE:
        return ": it still awaits review."
    needed = candidate.agent.required_approvals
    done = sum(candidate.counts_toward(r) for r in reviews)
    said = f": it still awaits review, with {done} of {needed} approval{pluralize(needed)}."
    if edited:
        # The others' approvals were of the text before the edit.
        earlier = [r.reviewer.get_username() for r in reviews if r.reviewer_id != reviewer.pk
                   and r.decision == Review.Decision.APPROVE and not candidate.counts_toward(r)]
        if earlier:
            n = len(earlier)
            said += (f" The approval{pluralize(n)} of {', '.join(earlier)} {pluralize(n, 'was,were')} of the "
                     "text before your edit: counted again once approving the edit.")
        return said
    mine = next((r for r in reviews if r.reviewer_id == reviewer.pk), None)
    if mine is not None and not candidate.counts_toward(mine):
        # What would be trained is not what they approved: an edit blind review
        # hid, or one made while their page showed the response.
        editor = candidate.edited_by.get_username() if candidate.edited_by else "Another reviewer"
        how = (f"{editor} had edited the response, which blind review hid from you"
               if candidate.agent.blind_review and mine.approved_edit is None
               else f"{editor} edited the response after your page showed it")
        said += (
            f" {how}: your approval is of the text you saw and does not count toward the edit. Open "
            f"candidate #{candidate.pk} to read the edit and approve it, or edit it yourself."
        )
    return said


@require_POST
def candidate_bulk(request):
    """Approve or reject the candidates selected on the list, with one comment,
    each through Candidate.decide (a rejection needs the comment)."""
    require_perm(request, "scoring.view_candidate", "scoring.review_candidate")
    form = DecideForm(request.POST)
    ids = [int(v) for v in request.POST.getlist("ids") if v.isascii() and v.isdigit()][:BULK_LIMIT]
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = reverse("candidate_list")
    if not ids:
        messages.error(request, "Select the candidates to decide first.")
        return redirect(back)
    if not form.is_valid() or form.cleaned_data["decision"] == "skip":
        problems = " ".join(m for errors in form.errors.values() for m in errors) or "Approve or reject them."
        messages.error(request, f"Nothing decided. {problems}")
        return redirect(back)

    decision, comment = form.cleaned_data["decision"], form.cleaned_data["comment"]
    # The bar's "Reverse settled candidates too" box: without it, a settled
    # candidate this would move is left as it is, and listed.
    confirm = request.POST.get("confirm_reversal") == "1"
    candidates = Candidate.objects.without_ids().filter(pk__in=ids).order_by("-divergence", "id")
    outcome = decide_each(candidates, request.user, decision, comment, confirm_reversal=confirm)
    done = [c.pk for c in outcome.decided]
    reversed_ = [f"#{c.pk} ({before} → {c.status})" for c, before in outcome.moved if before in SETTLED]
    unconfirmed = [f"#{e.candidate.pk} ({e.candidate.status} → {status_words(e.new_status)})"
                   for e in outcome.unconfirmed]
    refused = [f"#{c.pk} ({' '.join(e.messages)})" for c, e in outcome.refused]
    if done:
        listed = ", ".join(f"#{pk}" for pk in done)
        n = f"{len(done)} candidate{pluralize(len(done))}"
        where = outcome.where_they_stand()
        messages.success(request, f"You {DECISION_VERBS[decision]} {n}: {listed}." + (f" {where}" if where else ""))
    if reversed_:
        messages.warning(request, "You reversed settled decisions: " + ", ".join(reversed_) + ".")
    if unconfirmed:
        messages.warning(
            request,
            f"Not decided, as your {Review.Decision(decision).label} would reverse their settled decision: "
            + ", ".join(unconfirmed)
            + ". To reverse them, select them again and tick “Reverse settled candidates too”.",
        )
    if refused:
        messages.warning(request, "Not decided: " + "; ".join(refused))
    return redirect(back)


def _form_errors(request, candidate, partial, **forms_):
    """A form with errors: in place of the form for htmx (the page keeps its
    URL, so a reload sends nothing again), else the whole page (without
    JavaScript, the answer to the POST)."""
    context = _posted_page_context(request, candidate, **forms_)
    if request.htmx:
        response = render(request, f"{TEMPLATE}#{partial}", context)
        return reswap(retarget(response, f"#{partial.replace('_', '-')}"), "outerHTML")
    return render(request, TEMPLATE, context)


def _posted_page_context(request, candidate, **forms_):
    """The page's context for an answer to one of its forms, which keeps the
    queue's agent (the forms send it) so the next decision moves on in that
    agent's queue, as one made without a refusal does."""
    context = page_context(request, candidate, **forms_)
    context["agent_filter"] = agent_filter(request)
    return context


def _decisions_with_fresh_form(request, candidate, partial):
    """The updated decisions panel, plus an empty form swapped out of band."""
    candidate.refresh_from_db()
    context = _posted_page_context(request, candidate)
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
    path("candidates/bulk/", candidate_bulk, name="candidate_bulk"),
]
