"""An approval records which text it approved: the response, or an edit
(Review.approved_edit). Approvals made before count as they did: toward the
candidate's current text."""

from django.db import migrations, models


def approvals_of_the_current_text(apps, schema_editor):
    Review = apps.get_model("scoring", "Review")
    Candidate = apps.get_model("scoring", "Candidate")
    edited = Candidate.objects.filter(edited_at__isnull=False)
    for pk, edited_at in edited.values_list("pk", "edited_at").iterator():
        Review.objects.filter(candidate_id=pk, decision="approve").update(approved_edit=edited_at)


class Migration(migrations.Migration):

    dependencies = [
        ('scoring', '0023_keep_decisions_and_samples'),
    ]

    operations = [
        migrations.AddField(
            model_name='review',
            name='approved_edit',
            field=models.DateTimeField(blank=True, help_text='For an approval: the time of the edit it approved; empty for the response itself.', null=True, verbose_name='approved edit of'),
        ),
        migrations.RunPython(approvals_of_the_current_text, migrations.RunPython.noop),
    ]
