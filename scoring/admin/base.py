"""What the admin's ModelAdmins share: activity logging, read-only views, short text."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.text import Truncator

from scoring.forms.changes import changes
from scoring.models import Activity


def short(text, length=80):
    return Truncator(" ".join((text or "").split())).chars(length)


def errors_text(error):
    return "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)


class LoggedAdmin(admin.ModelAdmin):
    """Edits and deletions made in the admin go to the activity log too."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        verb = "changed in admin" if change else "added in admin"
        Activity.record(request.user, verb, obj, fields=sorted(form.changed_data),
                        changes=changes(form) if change else {})

    def delete_model(self, request, obj):
        Activity.record(request.user, "deleted in admin", obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            Activity.record(request.user, "deleted in admin", obj)
        super().delete_queryset(request, queryset)


class ReadOnlyAdmin(LoggedAdmin):
    """Viewable (and, for superusers, deletable: logged) but never added or edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PartAdmin(ReadOnlyAdmin):
    """A part of a snapshot or a run (a memory, a node, a call, a cell):
    deleted with its whole (the admin's cascade from a snapshot, an agent or
    a run still takes it), never alone. Deleting a memory took its calls and
    cells out of finished runs, which still said 25 of 25 calls done, while
    their heatmaps kept the row and its cells answered 404."""

    def delete_view(self, request, object_id, extra_context=None):
        raise PermissionDenied

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def render_change_form(self, request, context, *args, **kwargs):
        context["show_delete"] = False  # the submit row's Delete link
        return super().render_change_form(request, context, *args, **kwargs)


class KeptAdmin(ReadOnlyAdmin):
    """Never deleted by hand either: the review's decisions and what was sent
    to training (deleting a review left its candidate approved with no
    decision; deleting a job whose outcome was unknown freed its samples to be
    sent, and trained, twice). Nor is what holds them (a candidate, a
    snapshot, an agent): the admin refuses a deletion that would take one."""

    def has_delete_permission(self, request, obj=None):
        return False
