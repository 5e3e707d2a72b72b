"""One engine step: apply pending reports and due deadlines, then dispatch, in one transaction.

Steps are exclusive cluster-wide (a transaction-level advisory lock): any process may call ``engine_step`` at
any time (the loops in every Celery worker, the periodic sweep, a test), and at most one does work at a time, so
batches never contend with each other. Work a skipped caller would have done is done by the step that holds the
lock, or by the next one (every writer also NOTIFYs, and loops also wake on a timer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from opscore_project.lib.db import raw_models
from workflows.engine.controls import (
    DispatchControls,
    dispatch_controls_read,
    dispatch_controls_read_locked,
    limits_lock,
)
from workflows.engine.deadlines import Due, apply_deadlines, due_runs
from workflows.engine.dispatch import dispatch_ready
from workflows.engine.oplog import EventBuffer
from workflows.engine.progress import apply_report
from workflows.engine.transitions import Transitions
from workflows.models import TaskReport

ENGINE_LOCK_KEY = 0x0C0E_E261  # pg advisory lock key of the engine step


@dataclass(frozen=True)
class StepResult:
    reports: int
    deadlines: int
    dispatched: list[str]  # dispatch refs written to the outbox: relay them now that the step committed
    full: bool  # a batch limit was reached: more work is probably waiting

    @property
    def did_work(self) -> bool:
        return bool(self.reports or self.deadlines or self.dispatched)


def _lock_and_read_controls() -> DispatchControls | None:
    """The engine lock and the operator's controls, in one round trip; None if another process holds the lock."""
    if not settings.IS_POSTGRES:
        return dispatch_controls_read()  # SQLite (embedded mode): writers are serialised by the database itself
    return dispatch_controls_read_locked(ENGINE_LOCK_KEY)


# Deadlines are read at most this often per process (three indexed queries); under load the engine steps many
# times a second and deadlines need no such precision.
DEADLINE_CHECK_SECONDS = 0.1
_last_deadline_check = 0.0


def _deadlines_due(explicit_now: bool) -> bool:
    global _last_deadline_check
    if explicit_now or time.monotonic() - _last_deadline_check >= DEADLINE_CHECK_SECONDS:
        _last_deadline_check = time.monotonic()
        return True
    return False


_CLAIM_SQL = f"""
DELETE FROM {TaskReport._meta.db_table} WHERE id IN (
    SELECT id FROM {TaskReport._meta.db_table} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
) RETURNING id, run_id, agent_pk, state, reported_at, details, explicit, received_at
"""


def _claim_reports(limit: int) -> list[TaskReport]:
    """Take (and delete) pending reports; one statement on Postgres."""
    if settings.IS_POSTGRES:
        return raw_models(TaskReport, _CLAIM_SQL, [limit])
    reports = list(TaskReport.objects.select_for_update(skip_locked=True).order_by("id")[:limit])
    if reports:
        TaskReport.objects.filter(pk__in=[report.pk for report in reports]).delete()
    return reports


def engine_step(*, now: datetime | None = None, limit: int | None = None) -> StepResult | None:
    """Run one step; None if another process holds the engine lock right now."""
    explicit_now = now is not None
    now = now or timezone.now()
    limit = limit or settings.OPSCORE_ENGINE_BATCH
    buffer = EventBuffer()
    with transaction.atomic():
        controls = _lock_and_read_controls()
        if controls is None:
            return None
        if controls.has_limits:
            limits_lock()  # before any row lock (lock order: engine → limits → rows)
            controls = replace(controls, limits_locked=True)
        reports = _claim_reports(limit)
        due = due_runs(now=now, limit=limit, controls=controls) if _deadlines_due(explicit_now) else Due()
        run_ids = {report.run_id for report in reports} | due.run_ids
        if run_ids:
            tx = Transitions(now, buffer)
            tx.load(run_ids=run_ids)
            for report in sorted(reports, key=lambda r: (r.reported_at, r.pk)):
                run = tx.run_index.get(report.run_id)
                if run is not None:
                    apply_report(tx, run, report)
            apply_deadlines(tx, due)
            tx.write(flush_events=False)
        dispatched = dispatch_ready(now=now, events_buffer=buffer, limit=limit, controls=controls)
        buffer.flush()
    deadlines = len(due.run_ids)
    return StepResult(
        reports=len(reports),
        deadlines=deadlines,
        dispatched=[d.dispatch_ref for d in dispatched],
        full=len(reports) >= limit or deadlines >= limit or len(dispatched) >= limit,
    )
