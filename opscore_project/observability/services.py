"""Writes of the observability app: metric counters, operation-log retention and the dashboard's rollups."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from opscore_project.locks import try_lock
from opscore_project.observability.models import MetricCounter, OperationEvent

logger = logging.getLogger("opscore.operations")


def metric_counters_increment(*, increments: list[tuple[str, str, float]]) -> None:
    """Add to counters, creating missing ones. One statement on Postgres; rows in key order so concurrent
    increments lock them in the same order and cannot deadlock."""
    rows = sorted(increments)
    if not rows:
        return
    if settings.IS_POSTGRES:
        values = ", ".join(["(%s, %s, %s)"] * len(rows))
        params = [item for row in rows for item in row]
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO observability_metriccounter (name, labels, value) VALUES "
                + values
                + " ON CONFLICT (name, labels) DO UPDATE"
                " SET value = observability_metriccounter.value + EXCLUDED.value",
                params,
            )
        return
    for name, labels, amount in rows:
        updated = MetricCounter.objects.filter(name=name, labels=labels).update(value=F("value") + amount)
        if not updated:
            MetricCounter.objects.create(name=name, labels=labels, value=amount)


def events_purge(*, older_than: datetime | None = None, batch_size: int = 5000, max_batches: int = 1000) -> int:
    """Delete operation-log events created before ``older_than`` (default: now minus
    ``OPSCORE_EVENT_RETENTION_DAYS``) in batches of ``batch_size`` ids, each its own short statement, so a large
    backlog never holds one long lock or transaction. Returns how many were deleted."""
    if older_than is None:
        older_than = timezone.now() - timedelta(days=settings.OPSCORE_EVENT_RETENTION_DAYS)
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            OperationEvent.objects.filter(created_at__lt=older_than)
            .order_by("created_at")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        count, _ = OperationEvent.objects.filter(id__in=ids).delete()
        deleted += count
        if len(ids) < batch_size:
            break
    if deleted:
        logger.info(
            "Purged %d operation events older than %s",
            deleted,
            older_than.isoformat(),
            extra={"event_type": "events.purged", "deleted": deleted},
        )
    return deleted


def events_purge_locked() -> int:
    """``events_purge`` under a cluster-wide lock: a second run while one is in progress returns 0."""
    with try_lock("observability.events_purge") as acquired:
        return events_purge() if acquired else 0


def fleet_rollup_refresh(*, now: datetime | None = None) -> dict:
    """Bring the dashboard's rollups (``fleet/rollup.py``) up to ``now`` under a cluster-wide lock: a second run
    while one is in progress does nothing. Postgres only (the embedded mode has no charts)."""
    if not settings.IS_POSTGRES:
        return {}
    from opscore_project.observability.fleet import rollup

    with try_lock("observability.fleet_rollup") as acquired:
        if not acquired:
            return {"skipped": "locked"}
        return rollup.refresh(now=now or timezone.now())
