"""The engine's side of a state report: cheap by design, since the state endpoint takes thousands per second.

A report about a task run (the agent holds one, or the report names one) becomes a ``TaskReport`` row and wakes
the engine; an ``idle`` from a free agent while tasks wait only wakes the engine. On Postgres both happen inside
the state write's own statement (a state probe with its own CTEs, registered in ``WorkflowsConfig.ready``), so a
report stays one round trip and one commit. Elsewhere (the embedded SQLite mode) the listener does it after the
write. The engine loop applies the reports in batches (``workflows.engine.step``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.db import connection

from lifecycle.hooks import StateReportResult
from lifecycle.models import AgentState, takes_tasks_sql
from opscore_project.lib.db import fetchone_idempotent
from workflows import selectors
from workflows.models import TaskReport, TaskRun

ENGINE_CHANNEL = "opscore_engine"
# States that can move a task run; others (initializing, …) say nothing about the run.
_PROGRESS_STATES = (AgentState.ACTIVE, AgentState.IDLE, AgentState.FINISHED, AgentState.ERROR)

_ENQUEUE_SQL = f"""
WITH report AS (
    INSERT INTO {TaskReport._meta.db_table} (run_id, agent_pk, state, reported_at, details, explicit, received_at)
    VALUES (%(run_id)s, %(agent_pk)s, %(state)s, %(reported_at)s, %(details)s::jsonb, %(explicit)s, %(now)s)
    RETURNING id
)
SELECT pg_notify('{ENGINE_CHANNEL}', '') FROM report
"""


# The state probe: its CTEs write the report and NOTIFY; its expression only makes sure they run (an unreferenced
# SELECT CTE would be skipped) and tells the listener that the work is done. An ``active`` report is stored but
# wakes nobody: it only marks the run running, which the next step does (woken by the run's ``idle``, any other
# work, or the loop's tick), so a task costs one engine step at low load instead of two.
ENGINE_INBOX_PROBE = "engine_inbox"
ENGINE_INBOX_EXPRESSION = "(SELECT count(*) FROM engine_wake) >= 0"
ENGINE_INBOX_CTE = f"""
engine_report AS (
    INSERT INTO {TaskReport._meta.db_table} (run_id, agent_pk, state, reported_at, details, explicit, received_at)
    SELECT COALESCE(%(explicit_run)s::uuid, NULLIF(upserted.assigned_task, '')::uuid), upserted.id, %(state)s,
           %(reported_at)s, %(details)s::jsonb, %(explicit_run)s::uuid IS NOT NULL, %(now)s
    FROM upserted
    WHERE (%(explicit_run)s::uuid IS NOT NULL OR upserted.assigned_task <> '')
      AND %(state)s IN ('active', 'idle', 'finished', 'error')
      AND EXISTS (SELECT 1 FROM inserted)
    RETURNING 1
), engine_wake AS (
    SELECT pg_notify('{ENGINE_CHANNEL}', '') FROM upserted
    WHERE (%(state)s <> 'active' AND EXISTS (SELECT 1 FROM engine_report))
       OR (%(state)s = 'idle' AND upserted.state = 'idle' AND upserted.assigned_task = ''
           AND {takes_tasks_sql("upserted", "%(now)s")}
           AND EXISTS (SELECT 1 FROM {TaskRun._meta.db_table} WHERE status = 'pending' AND ready_at <= %(now)s))
)
"""


def engine_inbox_params(agent_id: str, state: str, details: Any) -> dict[str, Any]:
    return {"explicit_run": _explicit_task_ref(details)}


def engine_wake() -> None:
    """Wake the engine loops (delivered when the current transaction commits). No-op without Postgres: the
    engine then polls every OPSCORE_ENGINE_TICK_SECONDS."""
    if settings.IS_POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {ENGINE_CHANNEL}")


def task_report_enqueue(
    *, run_id: uuid.UUID, agent_pk: int, state: str, reported_at: Any, details: Any, explicit: bool, now: Any
) -> None:
    """Hand one report about a task run to the engine (one round trip on Postgres)."""
    if settings.IS_POSTGRES:
        fetchone_idempotent(
            _ENQUEUE_SQL,
            {
                "run_id": run_id,
                "agent_pk": agent_pk,
                "state": state,
                "reported_at": reported_at,
                "details": json.dumps(details if isinstance(details, dict) else {}, separators=(",", ":")),
                "explicit": explicit,
                "now": now,
            },
        )
        return
    TaskReport.objects.create(
        run_id=run_id,
        agent_pk=agent_pk,
        state=state,
        reported_at=reported_at,
        details=details if isinstance(details, dict) else {},
        explicit=explicit,
        received_at=now,
    )


def _explicit_task_ref(details: Any) -> uuid.UUID | None:
    if not isinstance(details, dict):
        return None
    for key in ("opscore_task_id", "taskId"):
        value = details.get(key)
        if isinstance(value, str) and value:
            try:
                return uuid.UUID(value)
            except ValueError:
                return None
    return None


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def state_report_received(result: StateReportResult) -> None:
    """The lifecycle state listener (see the module docstring). Out-of-order reports are passed on too: an
    ``active`` older than the current state may be the one that lets an early ``idle`` complete its run."""
    if result.probes.get(ENGINE_INBOX_PROBE):
        return  # done inside the state write (Postgres)
    explicit_id = _explicit_task_ref(result.details)
    run_id = explicit_id or _as_uuid(result.assigned_task)
    if run_id is not None and result.stored and result.state in _PROGRESS_STATES:
        task_report_enqueue(
            run_id=run_id,
            agent_pk=result.agent_pk,
            state=result.state,
            reported_at=result.reported_at,
            details=result.details,
            explicit=explicit_id is not None,
            now=result.received_at,
        )
        return
    if result.state != AgentState.IDLE or not result.became_current or result.assigned_task:
        return
    if selectors.task_run_waiting_exists(now=result.received_at):
        engine_wake()
