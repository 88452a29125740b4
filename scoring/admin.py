"""The admin panel: every model, with state changes only through the model verbs.

Results written by the engine (calls, cells, scores) and decisions written by
reviewers are read-only here: editing them by hand would break what the
constraints guarantee. Approve/reject, retry and cancel are admin actions that
call the same verbs as the pages (`decide`, `retry`, `cancel`), so they are
checked, logged and settled the same way. Text from models is never marked
safe: the admin escapes it.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.utils.text import Truncator

from scoring.forms import AgentForm
from scoring.models import (
    Activity,
    Agent,
    Candidate,
    CellScore,
    Comment,
    Memory,
    MemoryScore,
    Node,
    Review,
    ScoreCall,
    ScoringRun,
    Snapshot,
    TrainJob,
    TrainSample,
)


def _short(text, length=80):
    return Truncator(" ".join((text or "").split())).chars(length)


def _errors(error):
    return "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)


class LoggedAdmin(admin.ModelAdmin):
    """Edits and deletions made in the admin go to the activity log too."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        verb = "changed in admin" if change else "added in admin"
        Activity.record(request.user, verb, obj, fields=sorted(form.changed_data))

    def delete_model(self, request, obj):
        Activity.record(request.user, "deleted in admin", obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            Activity.record(request.user, "deleted in admin", obj)
        super().delete_queryset(request, queryset)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable (and, for superusers, deletable) but never added or edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- agents -------------------------------------------------------------------

@admin.register(Agent)
class AgentAdmin(LoggedAdmin):
    # The same form as the agent pages: the key is write-only there too.
    form = AgentForm
    list_display = ["name", "model", "base_url", "key_state", "incremental_enabled", "created_at"]
    list_filter = ["incremental_enabled"]
    search_fields = ["name", "model", "base_url"]
    readonly_fields = ["key_state", "ingest_token_state", "created_at", "created_by"]
    fieldsets = [
        (None, {"fields": ["name", "base_url", "model"]}),
        ("Secrets", {"fields": ["key_state", "api_key", "clear_api_key", "api_key_env",
                                "ingest_token_state"]}),
        ("Chat template", {"fields": ["message_template", "memory_template"]}),
        ("Scoring", {"fields": ["score_concurrency", "score_shards", "request_timeout"]}),
        ("Background scoring", {"fields": ["incremental_enabled", "incremental_max_age",
                                           "incremental_response_window", "incremental_batch",
                                           "weight_alpha"]}),
        ("Fine-tuning", {"fields": ["finetune_count", "finetune_min_divergence", "required_approvals"]}),
        ("Record", {"fields": ["created_at", "created_by"]}),
    ]

    @admin.display(description="API key")
    def key_state(self, agent):
        if agent.api_key_env:
            return f"from ${agent.api_key_env}"
        return "set" if agent.api_key else "none"

    @admin.display(description="snapshot API token")
    def ingest_token_state(self, agent):
        return "issued (only its hash is kept)" if agent.ingest_token_hash else "none"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("api_key"):
            Activity.record(request.user, "set API key", obj)
        elif form.cleaned_data.get("clear_api_key"):
            Activity.record(request.user, "removed API key", obj)


# --- snapshots and memories ------------------------------------------------------

@admin.register(Snapshot)
class SnapshotAdmin(LoggedAdmin):
    list_display = ["id", "agent", "taken_at", "source", "memory_count", "response_count",
                    "token_count", "imported_by", "imported_at"]
    list_filter = ["source", "agent"]
    list_select_related = ["agent", "imported_by"]
    date_hierarchy = "taken_at"
    search_fields = ["agent__name"]
    raw_id_fields = ["imported_by"]
    readonly_fields = ["agent", "source", "imported_at", "imported_by", "node_count", "memory_count",
                       "response_count", "token_count"]

    def has_add_permission(self, request):
        # Snapshots come in through the API, the upload page or the CLI (validated there).
        return False


@admin.register(Node)
class NodeAdmin(ReadOnlyAdmin):
    list_display = ["id", "snapshot", "section", "index", "role", "memory_key", "n_tokens", "text_start"]
    list_filter = ["section"]
    list_select_related = ["snapshot__agent"]
    search_fields = ["memory_key", "text"]
    raw_id_fields = ["snapshot", "memory"]
    exclude = ["token_ids"]
    readonly_fields = ["snapshot", "section", "index", "role", "memory_key", "memory", "text",
                       "timestamp", "n_tokens"]
    show_full_result_count = False

    @admin.display(description="text")
    def text_start(self, node):
        return _short(node.text)


class MemoryScoreInline(admin.TabularInline):
    model = MemoryScore
    extra = 0
    can_delete = False
    fields = ["scored_at", "score", "weight", "responses", "run"]
    readonly_fields = fields
    ordering = ["-scored_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Memory)
class MemoryAdmin(LoggedAdmin):
    list_display = ["key", "agent", "weight", "last_scored", "first_seen"]
    list_filter = ["agent"]
    list_select_related = ["agent"]
    search_fields = ["key", "text"]
    readonly_fields = ["agent", "key", "weight", "last_scored", "first_seen"]
    inlines = [MemoryScoreInline]

    def has_add_permission(self, request):
        return False


@admin.register(MemoryScore)
class MemoryScoreAdmin(ReadOnlyAdmin):
    list_display = ["memory", "score", "weight", "responses", "run", "scored_at"]
    list_select_related = ["memory", "run"]
    search_fields = ["memory__key"]
    raw_id_fields = ["memory", "run"]
    date_hierarchy = "scored_at"


# --- runs ----------------------------------------------------------------------

@admin.register(ScoringRun)
class ScoringRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "agent", "mode", "status", "calls", "tokens_scored", "created_by",
                    "created_at", "finished_at"]
    list_filter = ["status", "mode", "agent"]
    list_select_related = ["agent", "created_by"]
    search_fields = ["agent__name", "error"]
    date_hierarchy = "created_at"
    raw_id_fields = ["snapshot"]
    actions = ["cancel_runs"]

    @admin.display(description="calls done / failed / total")
    def calls(self, run):
        return f"{run.calls_done} / {run.calls_failed} / {run.calls_total}"

    def has_start_run_permission(self, request):
        return request.user.has_perm("scoring.start_run")

    @admin.action(description="Cancel the selected runs", permissions=["start_run"])
    def cancel_runs(self, request, queryset):
        cancelled = sum(1 for run in queryset.active() if run.cancel(by=request.user))
        skipped = queryset.count() - cancelled
        self.message_user(request, f"Cancelled {cancelled} run(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} run(s) had already ended.", messages.WARNING)


@admin.register(ScoreCall)
class ScoreCallAdmin(ReadOnlyAdmin):
    list_display = ["run", "seq", "filter", "memory", "range_start", "range_end", "status",
                    "attempts", "tokens", "error_start"]
    list_filter = ["status", "filter"]
    list_select_related = ["run", "memory"]
    search_fields = ["error", "memory__key"]
    raw_id_fields = ["run", "memory", "baseline"]
    show_full_result_count = False

    @admin.display(description="error")
    def error_start(self, call):
        return _short(call.error)


@admin.register(CellScore)
class CellScoreAdmin(ReadOnlyAdmin):
    list_display = ["run", "memory", "response", "delta", "failed"]
    list_filter = ["failed"]
    list_select_related = ["run", "memory", "response"]
    search_fields = ["memory__key"]
    raw_id_fields = ["run", "memory", "response"]
    # Millions of rows: no exact count on every page.
    show_full_result_count = False


# --- review --------------------------------------------------------------------

class ReviewInline(admin.TabularInline):
    model = Review
    extra = 0
    can_delete = False
    fields = ["reviewer", "decision", "comment", "created_at", "updated_at"]
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
        approvals = Count("reviews", filter=Q(reviews__decision=Review.Decision.APPROVE))
        return super().get_queryset(request).annotate(n_approvals=approvals)

    @admin.display(description="divergence", ordering="divergence")
    def divergence_nats(self, candidate):
        return f"{candidate.divergence:.3f}"

    @admin.display(description="response")
    def response_start(self, candidate):
        return _short(candidate.response_text)

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
        self._decide(request, queryset, Review.Decision.APPROVE, "")

    @admin.action(description="Reject the selected candidates…", permissions=["review"])
    def reject_selected(self, request, queryset):
        # A rejection needs a reason: ask for one on an intermediate page.
        form = BulkRejectForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._decide(request, queryset, Review.Decision.REJECT, form.cleaned_data["comment"])
            return None
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
        done, failed = 0, []
        for candidate in queryset:
            try:
                candidate.decide(request.user, decision, comment)
                done += 1
            except ValidationError as e:
                failed.append(f"{candidate}: {_errors(e)}")
        verb = "Approved" if decision == Review.Decision.APPROVE else "Rejected"
        self.message_user(request, f"{verb} {done} candidate(s).", messages.SUCCESS)
        for problem in failed:
            self.message_user(request, f"Not decided: {problem}", messages.ERROR)


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ["candidate", "reviewer", "decision", "comment_start", "created_at", "updated_at"]
    list_filter = ["decision"]
    list_select_related = ["candidate", "reviewer"]
    search_fields = ["comment", "reviewer__username"]
    raw_id_fields = ["candidate"]

    @admin.display(description="comment")
    def comment_start(self, review):
        return _short(review.comment)


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdmin):
    list_display = ["candidate", "author", "text_start", "created_at"]
    list_select_related = ["candidate", "author"]
    search_fields = ["text", "author__username"]
    raw_id_fields = ["candidate"]

    @admin.display(description="text")
    def text_start(self, comment):
        return _short(comment.text)


# --- training ------------------------------------------------------------------

class TrainSampleInline(admin.TabularInline):
    model = TrainSample
    extra = 0
    can_delete = False
    fields = ["candidate", "live", "context_tokens", "continuation_tokens"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="context tokens")
    def context_tokens(self, sample):
        return len(sample.context_ids)

    @admin.display(description="continuation tokens")
    def continuation_tokens(self, sample):
        return len(sample.continuation_ids)


@admin.register(TrainJob)
class TrainJobAdmin(ReadOnlyAdmin):
    list_display = ["short_id", "agent", "status", "samples", "attempts", "server_job_id",
                    "created_by", "created_at", "finished_at"]
    list_filter = ["status", "agent"]
    list_select_related = ["agent", "created_by"]
    search_fields = ["server_job_id", "last_error"]
    date_hierarchy = "created_at"
    inlines = [TrainSampleInline]
    actions = ["retry_jobs"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_samples=Count("samples"))

    @admin.display(description="job", ordering="id")
    def short_id(self, job):
        return str(job.pk)[:8]

    @admin.display(description="samples", ordering="n_samples")
    def samples(self, job):
        return job.n_samples

    def has_send_training_permission(self, request):
        return request.user.has_perm("scoring.send_training")

    @admin.action(description="Retry the selected failed or unknown jobs", permissions=["send_training"])
    def retry_jobs(self, request, queryset):
        retried, problems = 0, []
        for job in queryset:
            if not job.can_retry:
                problems.append(f"{job} is {job.get_status_display()}: only failed or unknown jobs are retried")
                continue
            try:
                job.retry(by=request.user)
                retried += 1
            except ValidationError as e:
                problems.append(f"{job}: {_errors(e)}")
        self.message_user(request, f"Retried {retried} job(s).", messages.SUCCESS)
        for problem in problems:
            self.message_user(request, problem, messages.WARNING)


@admin.register(TrainSample)
class TrainSampleAdmin(ReadOnlyAdmin):
    list_display = ["id", "job", "candidate", "live"]
    list_filter = ["live"]
    list_select_related = ["job", "candidate"]
    raw_id_fields = ["job", "candidate"]
    exclude = ["context_ids", "continuation_ids"]


# --- the log -------------------------------------------------------------------

@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "verb", "target_type", "target_repr"]
    list_filter = ["verb", "target_type"]
    search_fields = ["actor_name", "verb", "target_repr"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "actor", "actor_name", "verb", "target_type", "target_id",
                       "target_repr", "detail"]

    # The log is a record: nobody adds, edits or deletes entries.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
