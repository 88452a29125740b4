"""The activity log: read-only, never deleted."""

from django.contrib import admin

from scoring.models import Activity


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
