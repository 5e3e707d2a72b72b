"""GIN index for capability routing (`capabilities @> '["x"]'`). Postgres only: the embedded SQLite mode has no
JSON containment and filters differently (lifecycle.selectors.with_capability)."""

from django.db import migrations

CREATE = "CREATE INDEX IF NOT EXISTS agent_capabilities_gin ON lifecycle_agent USING gin (capabilities jsonb_path_ops)"
DROP = "DROP INDEX IF EXISTS agent_capabilities_gin"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("lifecycle", "0002_history_reported_index")]
    operations = [migrations.RunPython(forwards, backwards)]
