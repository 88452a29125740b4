"""Issue 12: how many rejections settle a candidate, and blind review."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('scoring', '0010_agent_backend_settings'),
    ]

    operations = [
        migrations.AddField(
            model_name='agent',
            name='blind_review',
            field=models.BooleanField(
                default=False,
                help_text="A reviewer sees the others' decisions and comments on a candidate only once "
                "they have approved or rejected it.",
            ),
        ),
        migrations.AddField(
            model_name='agent',
            name='rejections_to_settle',
            field=models.PositiveSmallIntegerField(
                default=1,
                help_text="A candidate is rejected once this many reviewers reject it, whatever its approvals.",
                validators=[django.core.validators.MinValueValidator(1)],
            ),
        ),
    ]
