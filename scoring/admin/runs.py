"""Scoring runs and what the engine wrote for them (calls, cells): read-only,
with cancelling as the one action."""

from django.contrib import admin, messages

from scoring.admin.base import PartAdmin, ReadOnlyAdmin, short
from scoring.models import CellScore, ScoreCall, ScoringRun


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

    def has_delete_permission(self, request, obj=None):
        # A run still going is cancelled first (the action below): deleted
        # under its workers, it vanished with no cancellation on record.
        # Django asks this of every object a deletion takes (a bulk one too).
        if obj is not None and obj.is_active:
            return False
        return super().has_delete_permission(request, obj)

    @admin.action(description="Cancel the selected runs", permissions=["start_run"])
    def cancel_runs(self, request, queryset):
        cancelled = sum(1 for run in queryset.active() if run.cancel(by=request.user))
        skipped = queryset.count() - cancelled
        if cancelled:
            self.message_user(request, f"Cancelled {cancelled} run(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} run(s) had already ended.", messages.WARNING)


@admin.register(ScoreCall)
class ScoreCallAdmin(PartAdmin):
    list_display = ["run", "seq", "filter", "memory", "range_start", "range_end", "status",
                    "attempts", "tokens", "error_start"]
    list_filter = ["status", "filter"]
    list_select_related = ["run", "memory"]
    search_fields = ["error", "memory__key"]
    raw_id_fields = ["run", "memory", "baseline"]
    show_full_result_count = False

    @admin.display(description="error")
    def error_start(self, call):
        return short(call.error)


@admin.register(CellScore)
class CellScoreAdmin(PartAdmin):
    list_display = ["run", "memory", "response", "delta", "failed"]
    list_filter = ["failed"]
    list_select_related = ["run", "memory", "response"]
    search_fields = ["memory__key"]
    raw_id_fields = ["run", "memory", "response"]
    # Millions of rows: no exact count on every page.
    show_full_result_count = False
