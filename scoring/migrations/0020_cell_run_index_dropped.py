# The cells' own index on run_id goes: cell_unique_per_run_memory_response
# begins with run_id and serves every lookup by run. Dropped by name (the name
# Django gave it in 0001, the same on every database) rather than by the
# AlterField alone, which on SQLite copies the whole cells table.

import django.db.models.deletion
from django.db import migrations, models

INDEX = "scoring_cellscore_run_id_ab4c6b3d"


class Migration(migrations.Migration):

    dependencies = [
        ('scoring', '0019_agent_training_context_help_fine_tune'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX "{INDEX}" ON "scoring_cellscore" ("run_id")',
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='cellscore',
                    name='run',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='cells', to='scoring.scoringrun'),
                ),
            ],
        ),
    ]
