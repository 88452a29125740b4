"""Candidates: the list, one candidate's page (also the review queue's page), the JSONL export.

What reviewers do on the page (decide, comment, edit) is in views/review.py.
"""

import difflib
import json
import re

from django import forms
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from scoring.access import get_candidate_for_user, require_perm
from scoring.filters import CandidateFilter, agent_named
from scoring.models import Agent, Candidate, Node, Review, TrainSample
from scoring.models.snapshots import Section

# Conversation nodes shown before the response on a candidate's page.
CONTEXT_TAIL = 6
TEMPLATE = "scoring/candidate_detail.html"


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=Review.Decision.choices)
    comment = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Why? (required to reject)"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("decision") == Review.Decision.REJECT and not data.get("comment", "").strip():
            self.add_error("comment", "A rejection needs a comment saying why.")
        return data


class CommentForm(forms.Form):
    text = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 3}))


class EditForm(forms.Form):
    # Not stripped: whitespace is part of what the model is trained to produce.
    text = forms.CharField(
        label="Corrected response", strip=False, widget=forms.Textarea(attrs={"rows": 10})
    )


def agent_filter(request):
    """The agent named by ?agent= (its id or name), or None for all agents."""
    return agent_named(request.GET.get("agent") or request.POST.get("agent") or "")


# --- pages ------------------------------------------------------------------

def candidate_list(request):
    require_perm(request, "scoring.view_candidate")
    candidates = Candidate.objects.select_related("agent", "reserved_by").only(
        "id", "agent__name", "agent__required_approvals", "divergence", "status", "edited_at",
        "reserved_by__username", "reserved_until", "response_text",
    )
    candidates = CandidateFilter(request.GET or None, queryset=candidates).qs
    page = Paginator(candidates.order_by("-divergence", "id"), 50).get_page(request.GET.get("page"))
    # Approvals of this page's candidates only: counting in the page query
    # would group every candidate's row.
    page.object_list = list(page.object_list)
    approvals = dict(
        Review.objects.filter(
            candidate__in=[c.pk for c in page.object_list], decision=Review.Decision.APPROVE
        )
        .values("candidate")
        .annotate(n=Count("id"))
        .values_list("candidate", "n")
    )
    for candidate in page.object_list:
        candidate.approvals = approvals.get(candidate.pk, 0)
    return render(
        request,
        "scoring/candidate_list.html",
        {
            "page": page,
            "agent_choices": Agent.objects.values_list("id", "name"),
            "statuses": Candidate.Status.choices,
            "selected": {"agent": request.GET.get("agent", ""), "status": request.GET.get("status", "")},
            "now": timezone.now(),
        },
    )


def candidate_detail(request, pk):
    candidate = get_candidate_for_user(request, pk)
    if request.htmx:
        # The decisions panel polls this, so reviewers see each other's decisions.
        return render(request, f"{TEMPLATE}#decisions", decisions_context(request, candidate))
    return render(request, TEMPLATE, page_context(request, candidate))


def candidate_export(request):
    """Approved and trained samples as JSON lines, with where each came from."""
    require_perm(request, "scoring.view_candidate")
    candidates = (
        Candidate.objects.filter(status__in=[Candidate.Status.APPROVED, Candidate.Status.TRAINED])
        .select_related("agent", "snapshot", "edited_by")
        .prefetch_related(
            Prefetch("reviews", queryset=Review.objects.select_related("reviewer").order_by("created_at")),
            Prefetch(
                "samples",
                queryset=TrainSample.objects.filter(live=True).select_related("job"),
                to_attr="live_samples",
            ),
        )
        .order_by("agent_id", "id")
    )
    agent = agent_filter(request)
    if request.GET.get("agent") and agent is None:
        candidates = candidates.none()
    elif agent is not None:
        candidates = candidates.filter(agent=agent)

    lines = (json.dumps(_export_line(c)) + "\n" for c in candidates.iterator(chunk_size=200))
    response = StreamingHttpResponse(lines, content_type="application/jsonl; charset=utf-8")
    name = f"memscore-{agent.name if agent else 'all'}-samples.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _export_line(c):
    sample = c.live_samples[0] if c.live_samples else None
    return {
        # What was (or will be) sent: the job's own copy once there is one.
        "context_ids": sample.context_ids if sample else c.context_ids,
        "continuation_ids": sample.continuation_ids if sample else c.training_continuation_ids,
        "text": c.training_text,
        "original_text": c.response_text,
        "edited": c.is_edited,
        "provenance": {
            "candidate_id": c.pk,
            "agent": c.agent.name,
            "snapshot_id": c.snapshot_id,
            "taken_at": c.snapshot.taken_at.isoformat(),
            "run_id": c.run_id,
            "response_key": c.response_key,
            "divergence": c.divergence,
            "status": c.status,
            "reviewers": [
                {
                    "reviewer": r.reviewer.get_username(),
                    "decision": r.decision,
                    "comment": r.comment,
                    "at": r.updated_at.isoformat(),
                }
                for r in c.reviews.all()
            ],
            "edited_by": c.edited_by.get_username() if c.edited_by else None,
            "edited_at": c.edited_at.isoformat() if c.edited_at else None,
            "train_job": str(sample.job_id) if sample else None,
            "train_job_status": sample.job.status if sample else None,
            "server_job_id": (sample.job.server_job_id or None) if sample else None,
        },
    }


# --- the candidate page's contexts ---------------------------------------------

def decisions_context(request, candidate):
    """The decisions panel: reviews, comments, and whether this user may decide."""
    reviews = list(candidate.reviews.select_related("reviewer").order_by("updated_at"))
    approvals = [r for r in reviews if r.decision == Review.Decision.APPROVE]
    sample = (
        TrainSample.objects.filter(candidate=candidate, live=True).select_related("job").first()
    )
    return {
        "candidate": candidate,
        "reviews": reviews,
        "my_review": next((r for r in reviews if r.reviewer_id == request.user.pk), None),
        "approvals": approvals,
        "required_approvals": candidate.agent.required_approvals,
        "comments": list(candidate.comments.select_related("author")),
        "held_by_other": candidate.is_reserved_by_other(request.user),
        "reserved": bool(candidate.reserved_until and candidate.reserved_until > timezone.now()),
        "live_sample": sample,
        "decision_closed": candidate.status == Candidate.Status.TRAINED or sample is not None,
        "can_review": request.user.has_perm("scoring.review_candidate"),
    }


def page_context(request, candidate, queue=None, **forms_):
    """The whole page: the decisions panel, the context before the response,
    the diffs, and the forms (`forms_` keeps the ones that have errors)."""
    context = decisions_context(request, candidate)
    response = candidate.response
    tail = list(
        Node.objects.filter(
            snapshot_id=candidate.snapshot_id, section=Section.CONVERSATION, index__lt=response.index
        ).defer("token_ids").order_by("-index")[:CONTEXT_TAIL]
    )
    tail.reverse()
    has_alternate = candidate.alternate_status == Candidate.AlternateStatus.DONE
    context.update(
        queue=queue,
        agent_filter=queue["agent"] if queue else None,
        context_tail=tail,
        context_hidden=(tail[0].index if tail else 0),
        diff=word_diff(candidate.response_text, candidate.alternate_text) if has_alternate else None,
        edit_diff=(
            word_diff(candidate.response_text, candidate.edited_text) if candidate.is_edited else None
        ),
        decide_form=forms_.get("decide_form") or DecideForm(),
        comment_form=forms_.get("comment_form") or CommentForm(),
        edit_form=forms_.get("edit_form")
        or EditForm(initial={"text": candidate.training_text}),
        edit_open="edit_form" in forms_,
    )
    return context


# A word with the whitespace after it: half as many tokens as splitting them
# apart, and whitespace alone never lines two texts up.
_WORDS = re.compile(r"\S+\s*|\s+")
# Beyond this many words in all, difflib's popularity heuristic keeps a diff fast.
EXACT_DIFF_WORDS = 2000


def word_diff(old, new):
    """Word-level difference of two texts, as two lists of (text, kind) segments:
    kind is "same", "del" (only in old) or "ins" (only in new). The template
    escapes the text, so model output can never become markup."""
    a, b = _WORDS.findall(old or ""), _WORDS.findall(new or "")
    left, right = [], []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=len(a) + len(b) > EXACT_DIFF_WORDS)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            left.append(("".join(a[i1:i2]), "same"))
            right.append(("".join(b[j1:j2]), "same"))
            continue
        if i2 > i1:
            left.append(("".join(a[i1:i2]), "del"))
        if j2 > j1:
            right.append(("".join(b[j1:j2]), "ins"))
    return {"left": left, "right": right, "ratio": matcher.ratio()}


urlpatterns = [
    path("candidates/", candidate_list, name="candidate_list"),
    path("candidates/<int:pk>/", candidate_detail, name="candidate_detail"),
    path("candidates/export.jsonl", candidate_export, name="candidate_export"),
]
