"""Create the viewer, reviewer and operator groups with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from scoring.roles import OPERATOR, REVIEWER, VIEWER, permissions_for


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in (VIEWER, REVIEWER, OPERATOR):
        group, _ = Group.objects.get_or_create(name=role)
        codenames = permissions_for(role)
        perms = list(Permission.objects.filter(content_type__app_label="scoring", codename__in=codenames))
        missing = set(codenames) - {p.codename for p in perms}
        assert not missing, f"permissions missing for role {role}: {missing}"
        group.permissions.set(perms)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[VIEWER, REVIEWER, OPERATOR]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
