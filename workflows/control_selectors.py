"""Reads of the operator controls over dispatch (written by ``workflows.engine.controls``): what the engine must
obey, the usage of each limit, and why each waiting task run waits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from opscore_project.lib.db import fetchall_server_bound
from workflows.models import (
    CapabilityLimit,
    DispatchControl,
    SessionStatus,
    TaskRun,
    TaskRunStatus,
    WorkflowControl,
    WorkflowSession,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


_DISPATCH = DispatchControl._meta.db_table
_WORKFLOW = WorkflowControl._meta.db_table
_CAPABILITY = CapabilityLimit._meta.db_table
_RUN = TaskRun._meta.db_table
_SESSION = WorkflowSession._meta.db_table

# Empty tables (nothing configured) make this three index-free reads of nothing.
_CONTROLS_SQL = f"""
SELECT 'd', '', CAST(NULL AS integer), paused_at IS NOT NULL FROM {_DISPATCH} WHERE paused_at IS NOT NULL
UNION ALL
SELECT 'w', workflow_id, max_running_sessions, paused_at IS NOT NULL FROM {_WORKFLOW}
WHERE paused_at IS NOT NULL OR max_running_sessions IS NOT NULL
UNION ALL
SELECT 'c', capability, max_in_flight, FALSE FROM {_CAPABILITY}
"""
# The engine step's first statement (Postgres): its advisory lock, taken without waiting, and the controls.
_LOCK_AND_CONTROLS_SQL = "SELECT 'l', '', CAST(NULL AS integer), pg_try_advisory_xact_lock(%s::bigint)\nUNION ALL\n"
_LOCK_AND_CONTROLS_SQL += _CONTROLS_SQL

# A session waiting for a person still holds its place under its workflow's running-sessions limit: it goes on
# running the moment the person answers.
SESSION_HOLDS_SLOT = (SessionStatus.RUNNING, SessionStatus.WAITING_FOR_INPUT)

# Usage of the configured limits only: in-flight runs come from the partial index on in-flight runs
# (task_run_timeout_idx), running sessions from session_status_created_idx.
_USAGE_SQL = f"""
SELECT 'c', capability, count(*) FROM {_RUN}
WHERE status IN ('dispatched', 'running') AND capability = ANY(%(capabilities)s) GROUP BY capability
UNION ALL
SELECT 'w', workflow_id, count(*) FROM {_SESSION}
WHERE status IN ('running', 'waiting_for_input') AND workflow_id = ANY(%(workflows)s) GROUP BY workflow_id
"""


@dataclass(frozen=True)
class DispatchControls:
    """What the dispatch pass must obey, as read at the start of a step."""

    dispatch_paused: bool = False
    paused_workflows: frozenset[str] = frozenset()
    workflow_limits: dict[str, int] = field(default_factory=dict)
    capability_limits: dict[str, int] = field(default_factory=dict)
    limits_locked: bool = False  # this transaction already holds the limits lock (engine.controls.limits_lock)

    @property
    def has_limits(self) -> bool:
        return bool(self.workflow_limits or self.capability_limits)


@dataclass
class LimitUsage:
    """Current usage of each configured limit: runs in flight per capability, running sessions per workflow."""

    in_flight: dict[str, int] = field(default_factory=dict)
    running_sessions: dict[str, int] = field(default_factory=dict)


NO_CONTROLS = DispatchControls()


def dispatch_controls_read() -> DispatchControls:
    """Maintenance mode, paused workflows and configured limits, in one statement."""
    return _controls_of(fetchall_server_bound(_CONTROLS_SQL))


def dispatch_controls_read_locked(lock_key: int) -> DispatchControls | None:
    """Take the transaction-level advisory lock ``lock_key`` if it is free and read the controls, in one statement
    (Postgres); None if another transaction holds the lock."""
    rows = fetchall_server_bound(_LOCK_AND_CONTROLS_SQL, [lock_key])
    if not any(kind == "l" and locked for kind, _, _, locked in rows):
        return None
    return _controls_of([row for row in rows if row[0] != "l"])


def _controls_of(rows: list[tuple]) -> DispatchControls:
    if not rows:
        return NO_CONTROLS
    paused = False
    paused_workflows: set[str] = set()
    workflow_limits: dict[str, int] = {}
    capability_limits: dict[str, int] = {}
    for kind, key, limit, is_paused in rows:
        if kind == "d":
            paused = True
        elif kind == "w":
            if is_paused:
                paused_workflows.add(key)
            if limit is not None:
                workflow_limits[key] = limit
        else:
            capability_limits[key] = limit
    return DispatchControls(paused, frozenset(paused_workflows), workflow_limits, capability_limits)


def limit_usage(controls: DispatchControls) -> LimitUsage:
    """Usage of the limits ``controls`` names (one statement; none when no limit is configured)."""
    usage = LimitUsage()
    if not controls.has_limits:
        return usage
    if settings.IS_POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute(
                _USAGE_SQL,
                {"capabilities": sorted(controls.capability_limits), "workflows": sorted(controls.workflow_limits)},
            )
            rows = cursor.fetchall()
    else:  # SQLite: the same two counts with the ORM
        rows = [
            ("c", row["capability"], row["n"])
            for row in TaskRun.objects.filter(
                status__in=(TaskRunStatus.DISPATCHED, TaskRunStatus.RUNNING),
                capability__in=list(controls.capability_limits),
            )
            .order_by()
            .values("capability")
            .annotate(n=Count("id"))
        ] + [
            ("w", row["workflow_id"], row["n"])
            for row in WorkflowSession.objects.filter(
                status__in=SESSION_HOLDS_SLOT, workflow_id__in=list(controls.workflow_limits)
            )
            .order_by()
            .values("workflow_id")
            .annotate(n=Count("id"))
        ]
    for kind, key, count in rows:
        (usage.in_flight if kind == "c" else usage.running_sessions)[key] = count
    return usage


def waiting_reasons(runs: list[TaskRun], *, now: datetime) -> dict[uuid.UUID, str]:
    """Why each pending run of ``runs`` (their sessions loaded) is not dispatched yet, in the words the dashboard
    and the API show: ``dispatch paused``, ``workflow paused``, ``limit summarise: 10/10``, ``limit workflow w:
    3/3``, ``retry due at …``, ``no eligible agent`` / ``waiting for agent a1``. Two statements, only when some run
    waits."""
    pending = [run for run in runs if run.status == TaskRunStatus.PENDING]
    if not pending:
        return {}
    controls = dispatch_controls_read()
    usage = limit_usage(controls)
    reasons: dict[uuid.UUID, str] = {}
    for run in pending:
        session = run.session
        starts = session.status == SessionStatus.PENDING
        workflow_limit = controls.workflow_limits.get(session.workflow_id)
        running = usage.running_sessions.get(session.workflow_id, 0)
        capability_limit = controls.capability_limits.get(run.capability)
        in_flight = usage.in_flight.get(run.capability, 0)
        if run.ready_at > now:
            reason = f"retry due at {_iso(run.ready_at)}"
        elif controls.dispatch_paused:
            reason = "dispatch paused"
        elif starts and session.workflow_id in controls.paused_workflows:
            reason = "workflow paused"
        elif starts and workflow_limit is not None and running >= workflow_limit:
            reason = f"limit workflow {session.workflow_id}: {running}/{workflow_limit}"
        elif capability_limit is not None and in_flight >= capability_limit:
            reason = f"limit {run.capability}: {in_flight}/{capability_limit}"
        elif run.target_agent_id is not None:
            reason = "waiting for its agent"
        else:
            reason = "no eligible agent"
        reasons[run.pk] = reason
    return reasons


def waiting_runs() -> QuerySet[TaskRun]:
    """Every task run waiting for dispatch, in the order the dispatch pass considers them."""
    return (
        TaskRun.objects.filter(status=TaskRunStatus.PENDING)
        .select_related("session", "target_agent")
        .order_by("-priority", "ready_at", "created_at")
    )


def waiting_run_as_dict(run: TaskRun, reason: str) -> dict[str, Any]:
    return {
        "taskRunId": str(run.pk),
        "sessionId": str(run.session_id),
        "workflowId": run.session.workflow_id,
        "taskId": run.task_id,
        "capability": run.capability,
        "priority": run.priority,
        "agentId": run.target_agent.agent_id if run.target_agent_id else None,
        "readyAt": _iso(run.ready_at),
        "waitingReason": reason,
    }


def workflow_control_as_dict(control: WorkflowControl) -> dict[str, Any]:
    """A workflow's controls with the live counts they act on."""
    counts = dict(
        WorkflowSession.objects.filter(
            workflow_id=control.workflow_id, status__in=(SessionStatus.PENDING, *SESSION_HOLDS_SLOT)
        )
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    return {
        "workflowId": control.workflow_id,
        "paused": control.paused_at is not None,
        "pausedAt": _iso(control.paused_at),
        "rejectWhenPaused": control.reject_when_paused,
        "pauseReason": control.pause_reason,
        "maxRunningSessions": control.max_running_sessions,
        "runningSessions": sum(counts.get(status, 0) for status in SESSION_HOLDS_SLOT),
        "pendingSessions": counts.get(SessionStatus.PENDING, 0),
    }


def dispatch_status() -> dict[str, Any]:
    """Maintenance mode, paused workflows and every limit with its current usage."""
    control = DispatchControl.objects.filter(pk=DispatchControl.SINGLETON).first() or DispatchControl()
    workflows = list(WorkflowControl.objects.filter(Q(paused_at__isnull=False) | Q(max_running_sessions__isnull=False)))
    capabilities = list(CapabilityLimit.objects.all())
    usage = limit_usage(
        DispatchControls(
            workflow_limits={w.workflow_id: w.max_running_sessions for w in workflows if w.max_running_sessions},
            capability_limits={c.capability: c.max_in_flight for c in capabilities},
        )
    )
    return {
        "paused": control.paused_at is not None,
        "pausedAt": _iso(control.paused_at),
        "reason": control.reason,
        "pausedWorkflows": sorted(w.workflow_id for w in workflows if w.paused_at is not None),
        "workflowLimits": [
            {
                "workflowId": w.workflow_id,
                "maxRunningSessions": w.max_running_sessions,
                "runningSessions": usage.running_sessions.get(w.workflow_id, 0),
            }
            for w in workflows
            if w.max_running_sessions is not None
        ],
        "capabilityLimits": [capability_limit_as_dict(c, usage.in_flight.get(c.capability, 0)) for c in capabilities],
        "waitingTasks": TaskRun.objects.filter(status=TaskRunStatus.PENDING).count(),
    }


def capability_limit_as_dict(limit: CapabilityLimit, in_flight: int | None = None) -> dict[str, Any]:
    if in_flight is None:
        in_flight = TaskRun.objects.filter(
            status__in=(TaskRunStatus.DISPATCHED, TaskRunStatus.RUNNING), capability=limit.capability
        ).count()
    return {"capability": limit.capability, "maxInFlight": limit.max_in_flight, "inFlight": in_flight}


def session_waiting_reasons(*, session_id: str) -> dict[str, str]:
    """Why each waiting run of one session waits, keyed by task run id (the dashboard's session page)."""
    try:
        uuid.UUID(str(session_id))
    except ValueError:
        return {}
    runs = list(TaskRun.objects.filter(session_id=session_id, status=TaskRunStatus.PENDING).select_related("session"))
    return {str(pk): reason for pk, reason in waiting_reasons(runs, now=timezone.now()).items()}
