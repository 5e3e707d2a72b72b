"""Periodic tasks Ops-Core needs, created in django-celery-beat by `manage.py opscore_setup_schedules`.

Entries that already exist are left alone: an operator's change in the admin wins over these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class PeriodicTaskSpec:
    name: str
    task: str
    every_seconds: int
    description: str
    expires_seconds: int | None = None


def default_schedules() -> list[PeriodicTaskSpec]:
    specs = [
        PeriodicTaskSpec(
            name="AgentKit polling sync",
            task="agentkit_bridge.tasks.sync_agents",
            every_seconds=settings.AGENTKIT_POLL_INTERVAL,
            description="Polls GET /v1/agents on AgentKit and upserts/deregisters agents.",
            expires_seconds=settings.AGENTKIT_POLL_INTERVAL,
        ),
        PeriodicTaskSpec(
            name="Workflow sweep",
            task="workflows.tasks.sweep",
            every_seconds=settings.OPSCORE_WORKFLOW_SWEEP_SECONDS,
            description="Times out overdue task runs, fails runs past their queue timeout, dispatches waiting runs.",
            expires_seconds=settings.OPSCORE_WORKFLOW_SWEEP_SECONDS,
        ),
        PeriodicTaskSpec(
            name="Operation log retention",
            task="opscore_project.observability.tasks.purge_old_events",
            every_seconds=3600,
            description="Deletes operation-log events older than OPSCORE_EVENT_RETENTION_DAYS, in batches.",
            expires_seconds=3600,
        ),
        PeriodicTaskSpec(
            name="Alert evaluation",
            task="opscore_project.alerts.tasks.evaluate_alerts",
            every_seconds=settings.OPSCORE_ALERT_EVALUATE_SECONDS,
            description="Evaluates alert rules over agent and task state and the operation log; queues deliveries.",
            expires_seconds=settings.OPSCORE_ALERT_EVALUATE_SECONDS,
        ),
    ]
    return specs
