"""Users and roles (Django's own admin pages), their changes logged in the
activity log as the rest of the admin's are: who was given a role, made
staff or superuser, deactivated, added or deleted."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from scoring.models import Activity


def _roles(user):
    return sorted(user.groups.values_list("name", flat=True)) if user.pk else []


class LoggedUserAdmin(UserAdmin):
    def save_related(self, request, form, formsets, change):
        # After the groups are saved: the entry says the roles before and after.
        before = self._roles_before
        super().save_related(request, form, formsets, change)
        after = _roles(form.instance)
        fields = sorted(name for name in form.changed_data if name not in ("password", "password1", "password2"))
        detail = {"fields": fields}
        if before != after:
            detail["roles"] = f"{', '.join(before) or 'none'} → {', '.join(after) or 'none'}"
        for flag in ("is_active", "is_staff", "is_superuser"):
            if flag in form.changed_data:
                detail[flag] = getattr(form.instance, flag)
        Activity.record(request.user, "changed user in admin" if change else "added user in admin",
                        form.instance, **detail)

    def save_model(self, request, obj, form, change):
        self._roles_before = _roles(User.objects.get(pk=obj.pk)) if change else []
        super().save_model(request, obj, form, change)

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            Activity.record(request.user, "set password in admin", User.objects.get(pk=id))
        return response

    def delete_model(self, request, obj):
        Activity.record(request.user, "deleted user in admin", obj, roles=_roles(obj))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            Activity.record(request.user, "deleted user in admin", user, roles=_roles(user))
        super().delete_queryset(request, queryset)


class LoggedGroupAdmin(GroupAdmin):
    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        Activity.record(request.user, "changed role in admin" if change else "added role in admin",
                        form.instance, fields=sorted(form.changed_data))


admin.site.unregister(User)
admin.site.register(User, LoggedUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, LoggedGroupAdmin)
