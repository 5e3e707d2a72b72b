"""The workflow page: a version's graph, per-task statistics, and one session's graph coloured by status."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from opscore_project.observability.fleet import charts
from opscore_project.observability.fleet.graph import Layout, layout_definition
from workflows.models import TaskRun, TaskRunStatus, WorkflowDefinition, WorkflowSession

# Per task of one definition, over the task runs of its sessions created in the range (session_created_idx
# finds the sessions, task_run_session_idx their runs). Retries: attempts after the first of a retry budget.
TASK_STATS_SQL = f"""
SELECT r.task_id,
       count(*) AS runs,
       count(*) FILTER (WHERE r.status IN ('failed', 'timed_out')) AS failures,
       count(*) FILTER (WHERE r.try_number > 1) AS retries,
       percentile_cont(0.95) WITHIN GROUP (
         ORDER BY date_part('epoch', r.ended_at - COALESCE(r.started_at, r.accepted_at, r.dispatched_at)) * 1000
       ) FILTER (WHERE r.status IN ('completed', 'failed', 'timed_out')) AS p95_ms
  FROM {charts.TASK_RUN_TABLE} r
  JOIN {charts.SESSION_TABLE} s ON s.id = r.session_id
 WHERE s.definition_id = %(definition)s AND s.created_at >= %(since)s AND s.created_at < %(until)s
 GROUP BY r.task_id
"""


def task_stats(definition: WorkflowDefinition, *, since: datetime, until: datetime) -> dict[str, dict[str, Any]]:
    """Runs, failures (failed or timed out), retries and p95 run time (ms) per task id."""
    if settings.IS_POSTGRES:
        rows = charts.fetch_rows(TASK_STATS_SQL, {"definition": definition.pk, "since": since, "until": until})
    else:
        rows = [
            (row["task_id"], row["runs"], row["failures"], row["retries"], None)
            for row in TaskRun.objects.filter(
                session__definition=definition, session__created_at__gte=since, session__created_at__lt=until
            )
            .values("task_id")
            .annotate(
                runs=Count("id"),
                failures=Count("id", filter=Q(status__in=[TaskRunStatus.FAILED, TaskRunStatus.TIMED_OUT])),
                retries=Count("id", filter=Q(try_number__gt=1)),
            )
        ]
    return {
        task_id: {"runs": runs, "failures": failures, "retries": retries, "p95_ms": p95}
        for task_id, runs, failures, retries, p95 in rows
    }


def session_task_status(session: WorkflowSession) -> dict[str, dict[str, Any]]:
    """Per task id: the status of its latest attempt, how many attempts, the last error."""
    result: dict[str, dict[str, Any]] = {}
    for run in session.task_runs.order_by("attempt", "created_at"):
        entry = result.setdefault(run.task_id, {"attempts": 0})
        entry.update(status=run.status, error=run.error, attempts=entry["attempts"] + 1, run_id=str(run.pk))
    return result


def _session_of(workflow_id: str, session_id: str | None) -> WorkflowSession | None:
    if not session_id:
        return None
    try:
        uuid.UUID(session_id)
    except ValueError:
        return None
    return WorkflowSession.objects.select_related("definition").filter(pk=session_id, workflow_id=workflow_id).first()


def graph_of(definition: WorkflowDefinition, statuses: dict[str, dict[str, Any]] | None = None) -> Layout:
    layout = layout_definition(definition.spec["tasks"])
    for node in layout.nodes:
        entry = (statuses or {}).get(node.id)
        if statuses is not None:
            node.status = entry["status"] if entry else "not_run"
            node.attempts = entry["attempts"] if entry else 0
            node.extra = entry or {}
    return layout


def workflow_page(
    *,
    workflow_id: str,
    version: str | None = None,
    session_id: str | None = None,
    window_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """Everything on the workflow page, or None when no version of the workflow exists.

    With ``session_id`` (a session of this workflow) the graph is that session's, on the version it ran.
    """
    versions = list(WorkflowDefinition.objects.filter(workflow_id=workflow_id).order_by("-created_at", "-id"))
    if not versions:
        return None
    now = now or timezone.now()
    window = charts.window_get(window_key or "7d")
    session = _session_of(workflow_id, session_id)
    if session is not None:
        definition = session.definition
    else:
        definition = next((d for d in versions if d.version == version), versions[0])
    statuses = session_task_status(session) if session is not None else None
    layout = graph_of(definition, statuses)
    stats = task_stats(definition, since=now - window.span, until=now)
    tasks = [
        {
            "id": node.id,
            "label": node.label,
            "capability": node.capability,
            **stats.get(node.id, {"runs": 0, "failures": 0, "retries": 0, "p95_ms": None}),
        }
        for node in layout.nodes
    ]
    recent = list(
        WorkflowSession.objects.filter(workflow_id=workflow_id)
        .select_related("definition")
        .order_by("-created_at")[:10]
    )
    return {
        "workflow_id": workflow_id,
        "versions": versions,
        "definition": definition,
        "session": session,
        "layout": layout,
        "tasks": tasks,
        "window": window,
        "recent_sessions": recent,
    }
