"""Starting, cancelling and retrying sessions (the API, the admin, schedules and the SDK call these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from lifecycle.models import Agent
from opscore_project.errors import Conflict, NotFound, ValidationFailed
from opscore_project.lib.db import bulk_insert_rows
from opscore_project.observability import events
from workflows.engine import planning
from workflows.engine.controls import limits_lock, workflow_pause_state
from workflows.engine.oplog import EventBuffer
from workflows.engine.reports import engine_wake
from workflows.engine.transitions import Transitions, announce_waiting, enqueue_human_notices
from workflows.models import (
    SessionStatus,
    TaskRun,
    WorkflowControl,
    WorkflowDefinition,
    WorkflowSchedule,
    WorkflowSession,
)
from workflows.validation import capability_problems


def session_start(
    *,
    definition: WorkflowDefinition,
    agent: Agent | None = None,
    initial_payload: dict[str, Any] | None = None,
    callback_url: str = "",
    idempotency_key: str | None = None,
    schedule: WorkflowSchedule | None = None,
    now: datetime | None = None,
) -> tuple[WorkflowSession, bool]:
    """Create a session pinned to ``definition`` with its first task runs, and wake the engine to dispatch them.

    With ``idempotency_key`` the same key always returns the same session. Returns (session, created). While the
    workflow is paused the session waits as ``pending``; raises Conflict instead when the pause rejects new
    sessions (``rejectWhenPaused``). Raises ValidationFailed when tasks lack the capability they would be routed
    by (no ``agent``).
    """
    now = now or timezone.now()
    if agent is None and (problems := capability_problems(definition.spec)):
        raise ValidationFailed(problems, message="This workflow can only run for one agent (agentId).")
    if idempotency_key:
        existing = WorkflowSession.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    paused = workflow_pause_state(workflow_id=definition.workflow_id)
    if paused:
        raise Conflict(
            f"Workflow {definition.workflow_id!r} is paused and refuses new sessions; resume it first.",
            errors={"workflowId": ["Paused (rejectWhenPaused)."]},
        )
    try:
        with transaction.atomic():
            session = WorkflowSession.objects.create(
                definition=definition,
                workflow_id=definition.workflow_id,
                agent=agent,
                initial_payload=initial_payload or {},
                callback_url=callback_url or "",
                idempotency_key=idempotency_key or None,
                schedule=schedule,
                created_at=now,
            )
            buffer = EventBuffer()
            buffer.add(
                events.SESSION_CREATED,
                {"workflowId": definition.workflow_id, "version": definition.version}
                | ({"held": "workflow paused"} if paused is not None else {}),
                message=f"Session of {definition} created"
                + (" (waiting: the workflow is paused)" if paused is not None else ""),
                agent_id=agent.agent_id if agent else "",
                session_id=session.pk,
            )
            runs = planning.ready_runs(session, definition, [], now)
            bulk_insert_rows(TaskRun, runs)
            notices = announce_waiting(buffer, runs)
            if planning.waiting_status(session, runs) == SessionStatus.WAITING_FOR_INPUT:
                WorkflowSession.objects.filter(pk=session.pk).update(
                    status=SessionStatus.WAITING_FOR_INPUT, started_at=now
                )
                session.status, session.started_at = SessionStatus.WAITING_FOR_INPUT, now
            if notices:
                transaction.on_commit(lambda: enqueue_human_notices(notices))
            buffer.flush()
            engine_wake()
    except IntegrityError:
        if idempotency_key:
            return WorkflowSession.objects.get(idempotency_key=idempotency_key), False
        raise
    return session, True


def _locked(tx: Transitions, session_id: uuid.UUID | str) -> WorkflowSession:
    try:
        key = uuid.UUID(str(session_id))
    except ValueError:
        raise NotFound(f"Session {session_id} does not exist.") from None
    tx.load({key})
    session = tx.sessions.get(key)
    if session is None:
        raise NotFound(f"Session {session_id} does not exist.")
    return session


def session_cancel(*, session_id: uuid.UUID | str, reason: str = "Cancelled by operator.") -> WorkflowSession:
    """Stop a session: no further dispatch, in-flight runs cancelled, their agents freed. Raises Conflict."""
    with transaction.atomic():
        tx = Transitions(timezone.now())
        session = _locked(tx, session_id)
        if not session.is_active:
            raise Conflict(f"Session {session.pk} already ended ({session.status}).")
        tx.end_session(session, SessionStatus.CANCELLED, reason)
        tx.write()
        engine_wake()  # the freed agents can take other work
    return session


def session_retry(*, session_id: uuid.UUID | str) -> WorkflowSession:
    """Re-run a failed session from its failed step(s); completed steps keep their results. Raises Conflict.

    A session that had started resumes as running, unless its workflow is at its running-sessions limit: then it
    waits as pending, like a new session, until there is room."""
    with transaction.atomic():
        limit = _running_sessions_limit(session_id)
        if limit is not None:
            limits_lock()  # before the session's row lock, as in the engine step
        tx = Transitions(timezone.now())
        session = _locked(tx, session_id)
        if session.status != SessionStatus.FAILED:
            raise Conflict(f"Only a failed session can be retried (this one is {session.status}).")
        tx.retry_session(session)
        tx.write()
        if limit is not None and session.status == SessionStatus.RUNNING:
            running = WorkflowSession.objects.filter(workflow_id=session.workflow_id, status=SessionStatus.RUNNING)
            if running.exclude(pk=session.pk).count() >= limit:
                WorkflowSession.objects.filter(pk=session.pk, status=SessionStatus.RUNNING).update(
                    status=SessionStatus.PENDING
                )
                session.status = SessionStatus.PENDING
        engine_wake()
    return session


def _running_sessions_limit(session_id: uuid.UUID | str) -> int | None:
    try:
        key = uuid.UUID(str(session_id))
    except ValueError:
        return None
    workflow_id = WorkflowSession.objects.filter(pk=key).values_list("workflow_id", flat=True).first()
    if workflow_id is None:
        return None
    return (
        WorkflowControl.objects.filter(workflow_id=workflow_id).values_list("max_running_sessions", flat=True).first()
    )
