"""Periodic housekeeping of the operation log."""

from __future__ import annotations

from celery import shared_task

from opscore_project.observability import services


@shared_task(name="opscore_project.observability.tasks.purge_old_events", acks_late=True, ignore_result=True)
def purge_old_events() -> int:
    """Enforce OPSCORE_EVENT_RETENTION_DAYS (batched deletes; overlapping runs skip, see ``events_purge_locked``)."""
    return services.events_purge_locked()


@shared_task(name="opscore_project.observability.tasks.fleet_rollup", acks_late=True, ignore_result=True)
def fleet_rollup() -> dict:
    """Bring the dashboard's 7-day rollups up to date (overlapping runs skip, see ``fleet_rollup_refresh``)."""
    return services.fleet_rollup_refresh()
