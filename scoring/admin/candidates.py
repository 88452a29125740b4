"""Fine-tuning candidates with their reviews and comments; approving and
rejecting go through `Candidate.decide` as on the review pages."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, F, Q
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse

from scoring.admin.base import KeptAdmin, ReadOnlyAdmin, errors_text, short
from scoring.models import Candidate, Comment, Review
from scoring.models.candidates import BulkDecision, decide_each


class ReviewInline(admin.TabularInline):
    model = Review
    extra = 0
    can_delete = False
    fields = ["reviewer", "decision", "approved_edit", "comment", "created_at", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class CommentInline(admin.TabularInline):
    model = Comment
    extra = 0
    can_delete = False
    fields = ["author", "text", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class BulkRejectForm(forms.Form):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Saved with each rejection and shown to the other reviewers.",
    )


@admin.register(Candidate)
class CandidateAdmin(ReadOnlyAdmin):
    list_display = ["id", "agent", "status", "divergence_nats", "response_start", "alternate_status",
                    "approvals", "created_at"]
    list_filter = ["status", "alternate_status", "agent"]
    list_select_related = ["agent"]
    search_fields = ["response_text", "response_key"]
    date_hierarchy = "created_at"
    raw_id_fields = ["snapshot", "run", "response", "edited_by", "reserved_by"]
    # The token ids are long lists (a whole context): shown as counts.
    exclude = ["context_ids", "continuation_ids", "edited_ids"]
    readonly_fields = ["context_tokens", "continuation_tokens"]
    inlines = [ReviewInline, CommentInline]
    actions = ["approve_selected", "reject_selected"]

    def get_queryset(self, request):
        # Approvals of the text that would be trained (Candidate.counts_toward).
        of_this_text = Q(reviews__approved_edit=F("edited_at")) | Q(
            reviews__approved_edit__isnull=True, edited_at__isnull=True
        )
        approvals = Count("reviews", filter=Q(reviews__decision=Review.Decision.APPROVE) & of_this_text)
        return super().get_queryset(request).annotate(n_approvals=approvals)

    @admin.display(description="divergence", ordering="divergence")
    def divergence_nats(self, candidate):
        return f"{candidate.divergence:.3f}"

    @admin.display(description="response")
    def response_start(self, candidate):
        return short(candidate.response_text)

    @admin.display(description="approvals", ordering="n_approvals")
    def approvals(self, candidate):
        return candidate.n_approvals

    @admin.display(description="context tokens")
    def context_tokens(self, candidate):
        return len(candidate.context_ids or [])

    @admin.display(description="continuation tokens")
    def continuation_tokens(self, candidate):
        return len(candidate.continuation_ids or [])

    def has_review_permission(self, request):
        return request.user.has_perm("scoring.review_candidate")

    @admin.action(description="Approve the selected candidates", permissions=["review"])
    def approve_selected(self, request, queryset):
        return self._decide(request, queryset, Review.Decision.APPROVE, "")

    @admin.action(description="Reject the selected candidates…", permissions=["review"])
    def reject_selected(self, request, queryset):
        # A rejection needs a reason: ask for one on an intermediate page.
        form = BulkRejectForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            return self._decide(request, queryset, Review.Decision.REJECT, form.cleaned_data["comment"])
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject candidates",
            "opts": self.model._meta,
            "candidates": queryset,
            "form": form,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/scoring/candidate/reject_selected.html", context)

    def _decide(self, request, queryset, decision, comment):
        """Decide each candidate; those whose settled status the vote would
        reverse are left and asked about on a page of their own (their
        reversal is posted back with confirm_reversal, as the review page does)."""
        confirm = request.POST.get("confirm_reversal") == "1"
        outcome = decide_each(queryset, request.user, decision, comment, confirm_reversal=confirm)
        moved, stayed = [c for c, _ in outcome.moved], outcome.stayed
        failed = [f"{c}: {errors_text(e)}" for c, e in outcome.refused]
        reversals = [(e.candidate, errors_text(e)) for e in outcome.unconfirmed]
        verb = "approved" if decision == Review.Decision.APPROVE else "rejected"
        # What each vote did: a vote may be recorded and change nothing (other reviews settle it).
        if moved:
            done = ", ".join(f"#{c.pk} {c.get_status_display()}" for c in moved)
            what = "Reversed the decision on" if confirm else "Decided"
            self.message_user(request, f"{what} {len(moved)} candidate{pluralize(len(moved))}: {done}.",
                              messages.SUCCESS)
        if stayed:
            unchanged = BulkDecision(stayed=stayed).where_they_stand()  # the moved are said above
            others = " on the others" if moved else ""
            self.message_user(request, f"Your vote was recorded{others}. {unchanged}", messages.INFO)
        if not (moved or stayed or failed or reversals):
            self.message_user(request, f"Nothing {verb}.", messages.INFO)
        for problem in failed:
            self.message_user(request, f"Not decided: {problem}", messages.ERROR)
        if not reversals:
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Reverse settled decisions?",
            "opts": self.model._meta,
            "reversals": reversals,
            "action": request.POST.get("action"),
            "verb": str(decision),  # "approve" or "reject"
            "comment": comment,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/scoring/candidate/confirm_reversal.html", context)


@admin.register(Review)
class ReviewAdmin(KeptAdmin):
    list_display = ["candidate", "reviewer", "decision", "comment_start", "created_at", "updated_at"]
    list_filter = ["decision", "reviewer", "candidate__agent"]
    ordering = ["-updated_at"]
    list_select_related = ["candidate", "reviewer"]
    search_fields = ["comment", "reviewer__username"]
    raw_id_fields = ["candidate"]

    @admin.display(description="comment")
    def comment_start(self, review):
        return short(review.comment)


@admin.register(Comment)
class CommentAdmin(KeptAdmin):
    list_display = ["candidate", "author", "text_start", "created_at"]
    list_select_related = ["candidate", "author"]
    search_fields = ["text", "author__username"]
    raw_id_fields = ["candidate"]

    @admin.display(description="text")
    def text_start(self, comment):
        return short(comment.text)
