"""Training jobs and their samples; retrying goes through `scoring.outbox.retry`."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count

from scoring import outbox
from scoring.admin.base import KeptAdmin, errors_text
from scoring.followups import Followups
from scoring.models import TrainJob, TrainSample
from scoring.tasks.enqueue import enqueue_on_commit


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
class TrainJobAdmin(KeptAdmin):
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
                again = outbox.retry(job, by=request.user)
                retried += 1
            except ValidationError as e:
                problems.append(f"{job}: {errors_text(e)}")
                continue
            if again is not None:
                enqueue_on_commit(Followups(train_jobs=[again.pk]))
        self.message_user(request, f"Retried {retried} job(s).", messages.SUCCESS)
        for problem in problems:
            self.message_user(request, problem, messages.WARNING)


@admin.register(TrainSample)
class TrainSampleAdmin(KeptAdmin):
    list_display = ["id", "job", "candidate", "live"]
    list_filter = ["live"]
    list_select_related = ["job", "candidate"]
    raw_id_fields = ["job", "candidate"]
    exclude = ["context_ids", "continuation_ids"]
