"""Reads of definitions and sessions shared by the API, the admin and completion callbacks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from workflows.control_selectors import waiting_reasons
from workflows.models import TaskRun, TaskRunStatus, WorkflowDefinition, WorkflowSession, duration_ms

# Definitions are immutable once stored (a new version is a new row; sessions PROTECT theirs), so each process
# keeps the ones it has loaded: the engine reads a session's definition on every completion and dispatch.
_DEFINITION_CACHE: dict[int, WorkflowDefinition] = {}
_DEFINITION_CACHE_SIZE = 512


def definition_of(session: WorkflowSession) -> WorkflowDefinition:
    """The session's pinned definition, from this process's cache after the first read (no query)."""
    definition = _DEFINITION_CACHE.get(session.definition_id)
    if definition is None or definition.workflow_id != session.workflow_id:  # a test database flushed and reused ids
        definition = WorkflowDefinition.objects.get(pk=session.definition_id)
        if len(_DEFINITION_CACHE) >= _DEFINITION_CACHE_SIZE:
            _DEFINITION_CACHE.clear()
        _DEFINITION_CACHE[definition.pk] = definition
    return definition


def task_run_waiting_exists(*, now: datetime) -> bool:
    """Whether any task run is waiting for an agent (asked on idle reports; on Postgres the state write's own
    statement answers it, see ``workflows.engine.reports``)."""
    return TaskRun.objects.filter(status=TaskRunStatus.PENDING, ready_at__lte=now).exists()


def definition_latest_list() -> QuerySet[WorkflowDefinition]:
    """The latest version of every workflow id."""
    latest = WorkflowDefinition.objects.filter(workflow_id=OuterRef("workflow_id")).order_by("-created_at", "-id")
    return WorkflowDefinition.objects.filter(pk=Subquery(latest.values("pk")[:1])).order_by("workflow_id")


def definition_versions(*, workflow_id: str) -> QuerySet[WorkflowDefinition]:
    return WorkflowDefinition.objects.filter(workflow_id=workflow_id).order_by("-created_at", "-id")


def definition_as_dict(definition: WorkflowDefinition) -> dict[str, Any]:
    return {**definition.spec, "createdAt": _iso(definition.created_at), "source": definition.source}


def session_list(
    *,
    status: str | None = None,
    workflow: str | None = None,
    agent: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[WorkflowSession]:
    queryset = WorkflowSession.objects.select_related("definition", "agent")
    if status:
        queryset = queryset.filter(status=status)
    if workflow:
        queryset = queryset.filter(workflow_id=workflow)
    if agent:
        ran_on = TaskRun.objects.filter(agent__agent_id=agent).values("session_id")
        queryset = queryset.filter(Q(agent__agent_id=agent) | Q(pk__in=ran_on))
    if since:
        queryset = queryset.filter(created_at__gte=since)
    if until:
        queryset = queryset.filter(created_at__lt=until)
    return queryset.order_by("-created_at")


def session_get(*, session_id: str) -> WorkflowSession | None:
    try:
        uuid.UUID(str(session_id))
    except ValueError:
        return None
    return WorkflowSession.objects.select_related("definition", "agent").filter(pk=session_id).first()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def session_summary(session: WorkflowSession) -> dict[str, Any]:
    """A session without its tasks (list items)."""
    end = session.ended_at
    return {
        "sessionId": str(session.id),
        "workflowId": session.workflow_id,
        "workflowVersion": session.definition.version,
        "agentId": session.agent.agent_id if session.agent_id else None,
        "status": session.status,
        "startedAt": _iso(session.started_at),
        "endedAt": _iso(end),
        "error": session.error or None,
        "initialPayload": session.initial_payload,
        "createdAt": _iso(session.created_at),
        "timings": {
            # queue wait: created → first task dispatched; run: first dispatch → end; total: created → end.
            "queueWaitMs": duration_ms(session.created_at, session.started_at),
            "runMs": duration_ms(session.started_at, end),
            "totalMs": duration_ms(session.created_at, end),
        },
    }


def task_run_as_dict(run: TaskRun) -> dict[str, Any]:
    return {
        "taskRunId": str(run.id),
        "taskId": run.task_id,
        "attempt": run.attempt,
        "status": run.status,
        "agentId": run.agent.agent_id if run.agent_id else None,
        "createdAt": _iso(run.created_at),
        "readyAt": _iso(run.ready_at),
        "dispatchedAt": _iso(run.dispatched_at),
        "startedAt": _iso(run.started_at),
        "endedAt": _iso(run.ended_at),
        "durationMs": duration_ms(run.started_at or run.dispatched_at, run.ended_at),
        "queueWaitMs": duration_ms(run.ready_at, run.dispatched_at),
        "dispatchLatencyMs": duration_ms(run.dispatched_at, run.accepted_at),
        "result": run.result,
        "error": run.error or None,
        "kind": run.kind,
        "prompt": run.prompt or None,
        "answeredBy": run.answered_by or None,
        "answeredAt": _iso(run.answered_at),
        "answeredVia": run.answered_via or None,
    }


def session_detail(session: WorkflowSession) -> dict[str, Any]:
    """The session with every task run (one per attempt), oldest first: the timeline."""
    runs = list(TaskRun.objects.filter(session=session).select_related("agent").order_by("created_at", "attempt"))
    for run in runs:
        run.session = session
    reasons = waiting_reasons(runs, now=timezone.now())
    return {
        **session_summary(session),
        "tasks": [{**task_run_as_dict(run), "waitingReason": reasons.get(run.pk)} for run in runs],
    }


def human_task_inbox(
    *, actor: Any, workflow: str | None = None, session: str | None = None, kind: str | None = None
) -> list[TaskRun]:
    """Human tasks waiting for input that ``actor`` may answer, oldest first. Waiting runs are few (a partial
    index holds only them), so the assignee check is made in Python on the rows read."""
    queryset = TaskRun.objects.filter(status=TaskRunStatus.WAITING_FOR_INPUT).select_related("session")
    if workflow:
        queryset = queryset.filter(session__workflow_id=workflow)
    if session:
        try:
            queryset = queryset.filter(session_id=uuid.UUID(str(session)))
        except ValueError:
            return []
    if kind:
        queryset = queryset.filter(kind=kind)
    return [run for run in queryset.order_by("created_at", "pk") if actor.may_answer(run)]


def human_task_definition(run: TaskRun) -> dict[str, Any]:
    """The definition's entry for a run's task (options, inputSchema, onTimeout)."""
    return definition_of(run.session).task(run.task_id)
