"""One candidate's page (also the review queue's page): its forms, and the
contexts of the page and of its decisions panel, which polls.

The page has one comment box: a rejection reads it, and "Add comment" posts
it alone. What the forms post to is views/review.py.
"""

import difflib
import re
from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from scoring.engine import alternates
from scoring.models import Activity, Candidate, Node, Review, TrainSample
from scoring.models.candidates import AS_SHOWN_NOW, blind_to, edit_shown_to, settling_rule, status_words
from scoring.models.review import DECISION_VERBS
from scoring.models.snapshots import Section

# Conversation nodes shown before the response on a candidate's page.
CONTEXT_TAIL = 6
TEMPLATE = "scoring/candidate_detail.html"


class ConfirmsReversal(forms.Form):
    # The decision the user confirmed reversing a settled candidate with (the
    # confirmation's button sends it); any other decision is not confirmed.
    confirm_reversal = forms.CharField(required=False)

    def confirms(self, decision):
        return bool(decision) and self.cleaned_data.get("confirm_reversal") == decision


def parse_datetime_or_none(text):
    try:
        return parse_datetime(text)
    except ValueError:
        return None


class DecideForm(ConfirmsReversal):
    """A decision and the page's one comment box (which a rejection needs)."""

    decision = forms.ChoiceField(choices=Review.Decision.choices)
    comment = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Why? (required to reject)"}),
    )

    # The edit the page showed (its time, ISO 8601), or "" for the response:
    # what an approval approves. Absent (a client of its own): as shown now.
    seen_edit = forms.CharField(required=False, widget=forms.HiddenInput)

    def seen(self):
        """Candidate.decide's seen_edit from what the page sent."""
        if "seen_edit" not in self.data:
            return AS_SHOWN_NOW
        # Anything but a time is the response itself: it never counts toward an edit.
        return parse_datetime_or_none(self.cleaned_data.get("seen_edit") or "")

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and not data.get("decision") and data.get("confirm_reversal"):
            # The confirmation's own button sends only confirm_reversal=DECISION,
            # so the page's usual buttons (and their keys) never confirm.
            data = data.copy()
            data["decision"] = data["confirm_reversal"]
        super().__init__(data, *args, **kwargs)

    def clean(self):
        data = super().clean()
        if data.get("decision") == Review.Decision.REJECT and not data.get("comment", "").strip():
            self.add_error("comment", "A rejection needs a comment saying why.")
        return data

    @property
    def confirmed(self):
        return self.confirms(self.cleaned_data.get("decision"))


class CommentForm(forms.Form):
    # The same box as the decision's comment: "Add comment" posts it alone.
    comment = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 3}))


class EditForm(ConfirmsReversal):
    # Not stripped: whitespace is part of what the model is trained to produce.
    text = forms.CharField(
        label="Corrected response", strip=False, widget=forms.Textarea(attrs={"rows": 10})
    )

    @property
    def confirmed(self):
        return self.confirms(Review.Decision.APPROVE)  # edit and approve


def decisions_context(request, candidate):
    """The decisions panel: reviews and comments (others' hidden under blind
    review until this user decides), the agent's rule, whether this user may decide."""
    reviews = list(candidate.reviews.select_related("reviewer").order_by("updated_at"))
    comments = list(candidate.comments.select_related("author"))
    my_review = next((r for r in reviews if r.reviewer_id == request.user.pk), None)
    can_review = request.user.has_perm("scoring.review_candidate")
    blind = blind_to(request.user, candidate, my_review.decision if my_review else None)
    if blind:
        hidden = sum(1 for r in reviews if r is not my_review)
        reviews = [my_review] if my_review else []
        comments = [c for c in comments if c.author_id == request.user.pk]
    sample = (
        TrainSample.objects.filter(candidate=candidate, live=True).select_related("job").first()
    )
    decision_closed = candidate.status == Candidate.Status.TRAINED or sample is not None
    approvals = [r for r in reviews if candidate.counts_toward(r)]
    for r in reviews:
        # An approval of an earlier text than the one to be trained: shown, not counted.
        r.superseded = r.decision == Review.Decision.APPROVE and not candidate.counts_toward(r)
    history = [] if blind else decision_history(candidate, reviews)
    return {
        "candidate": candidate,
        "reviews": reviews,
        "my_review": my_review,
        "approvals": approvals,
        "approvals_met": len(approvals) >= candidate.agent.required_approvals,
        "rejections": [r for r in reviews if r.decision == Review.Decision.REJECT],
        "required_approvals": candidate.agent.required_approvals,
        "rule": settling_rule(candidate.agent),
        "blind": blind,
        "hidden_decisions": hidden if blind else 0,
        "comments": comments,
        "held_by_other": candidate.is_reserved_by_other(request.user),
        "reserved": bool(candidate.reserved_until and candidate.reserved_until > timezone.now()),
        "live_sample": sample,
        "decision_closed": decision_closed,
        "can_review": can_review,
        "new_votes": (
            new_votes(request.user, candidate) if can_review and candidate.is_settled and not decision_closed else None
        ),
        "history": history,
        "history_note": history_note(history) if history else "",
    }


def new_votes(user, candidate):
    """What each vote of `user` would do to a settled candidate, in words:
    [(decision label, the status it leaves, whether that reverses it)]."""
    said = []
    for decision in (Review.Decision.APPROVE, Review.Decision.REJECT, Review.Decision.SKIP):
        after = candidate.status_after(user, decision)
        said.append((decision.label.capitalize(), status_words(after), after != candidate.status))
    return said


# A reviewer's review row is rewritten when they change their mind; the log
# keeps the decisions it replaced. Asked only when a review was changed (its
# row updated well after it was made), since the log is not indexed by target,
# or when the log holds a reversal of this candidate: a new vote that reverses
# a settled candidate changes no review row.
CHANGED_AFTER = timedelta(seconds=1)
REVERSED = "reversed the decision on"
HISTORY_VERBS = [*DECISION_VERBS.values(), REVERSED]


def decision_history(candidate, reviews):
    """The decisions and reversals on `candidate`, oldest first, from the
    activity log, when some reviewer replaced an earlier decision or a vote
    reversed a settled one; else []."""
    if not reviews:
        return []
    log = Activity.objects.filter(target_type="candidate", target_id=str(candidate.pk))
    changed = any(r.updated_at - r.created_at > CHANGED_AFTER for r in reviews)
    # By verb first (the activity_verb_newest_first index): reversals are few,
    # so the panel's poll reads a handful of rows, not the whole log.
    if not changed and not log.filter(verb=REVERSED).exists():
        return []
    return list(log.filter(verb__in=HISTORY_VERBS).order_by("created_at", "id")[:100])


def history_note(history):
    """Why the page shows the decision history, in words."""
    replaced = any("replaced" in entry.detail for entry in history)
    reversed_ = any(entry.verb == REVERSED for entry in history)
    if replaced and reversed_:
        return "A reviewer changed their decision, and the decision was reversed"
    return "The decision was reversed" if reversed_ else "A reviewer changed their decision"


def page_context(request, candidate, queue=None, **forms_):
    """The whole page: the decisions panel, the context before the response,
    the diffs, and the forms (`forms_` keeps the ones that have errors)."""
    context = decisions_context(request, candidate)
    response = candidate.response
    # One node more than shown: the last one left out, which the "not shown"
    # line links to (the snapshot page opens there, the shown ones below it).
    tail = list(
        Node.objects.filter(
            snapshot_id=candidate.snapshot_id, section=Section.CONVERSATION, index__lt=response.index
        ).defer("token_ids").order_by("-index")[:CONTEXT_TAIL + 1]
    )
    tail.reverse()
    last_hidden = tail.pop(0) if len(tail) > CONTEXT_TAIL else None
    has_alternate = candidate.alternate_status == Candidate.AlternateStatus.DONE
    # Another's edit hidden, the edit form starts from the response itself.
    edit_shown = edit_shown_to(request.user, candidate, context["blind"])
    # What the decision form says the page shows (the edit, or "" for the
    # response): an approval is of that text (Candidate.decide's seen_edit).
    # A form swapped back in by htmx keeps what its page showed.
    seen_edit = candidate.edited_at.isoformat() if edit_shown else ""
    if request.method == "POST" and request.htmx and "seen_edit" in request.POST:
        seen_edit = request.POST["seen_edit"]
    context.update(
        queue=queue,
        # Opened on its own (not from the queue), a decision moves on in its
        # agent's queue: a team reviewing its agent stays with it.
        agent_filter=queue["agent"] if queue else candidate.agent,
        context_tail=tail,
        context_hidden=(tail[0].index if tail else 0),
        last_hidden=last_hidden,
        diff=word_diff(candidate.response_text, candidate.alternate_text) if has_alternate else None,
        alternate_max_tokens=alternates.MAX_TOKENS,
        edit_diff=word_diff(candidate.response_text, candidate.edited_text) if edit_shown else None,
        seen_edit=seen_edit,
        decide_form=forms_.get("decide_form") or forms_.get("comment_form") or DecideForm(),
        edit_form=forms_.get("edit_form")
        or EditForm(initial={"text": candidate.edited_text if edit_shown else candidate.response_text}),
        edit_open="edit_form" in forms_,
        # A vote refused because it would reverse a settled candidate: the
        # form offers to confirm it.
        reversal=forms_.get("reversal"),
        edit_reversal=forms_.get("edit_reversal"),
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
