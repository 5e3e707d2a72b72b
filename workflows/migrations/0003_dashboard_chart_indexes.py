"""Indexes for the dashboard's time-bucketed charts (opscore_project/observability/fleet/charts.py).

Postgres only, and kept out of the models' Meta on purpose: they use INCLUDE so each chart is an index-only
scan over its time range, which Django's Index cannot express portably, and the embedded SQLite mode has no
charts. Partial (``… IS NOT NULL``): runs and sessions that have not ended or been dispatched are not charted.
Kept to three because every index on workflows_taskrun is written on the engine's hot path; the agent page's
per-agent figures use the foreign-key index on agent_id (a few thousand runs per agent at a million runs).
Timings with and without them: docs/performance.md, "Dashboard".
"""

from django.db import migrations

INDEXES = {
    # Sessions completed/failed per bucket and the workflow tables (range on ended_at, reads status/workflow).
    "session_ended_idx": (
        "workflows_workflowsession (ended_at) INCLUDE (status, workflow_id, created_at) WHERE ended_at IS NOT NULL"
    ),
    # Tasks completed per bucket and the agent tables (range on ended_at, reads the run-time columns).
    "task_run_ended_idx": (
        "workflows_taskrun (ended_at) INCLUDE (status, agent_id, started_at, accepted_at, dispatched_at) "
        "WHERE ended_at IS NOT NULL"
    ),
    # Queue wait and dispatch latency per bucket (range on dispatched_at).
    "task_run_dispatched_idx": (
        "workflows_taskrun (dispatched_at) INCLUDE (ready_at, started_at, accepted_at) WHERE dispatched_at IS NOT NULL"
    ),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, definition in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0002_engine_inbox_and_delivery"),
    ]

    operations = [migrations.RunPython(create, drop)]
