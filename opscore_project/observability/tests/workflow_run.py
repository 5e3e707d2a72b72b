"""A simulated workflow run that emits every transition through ``log_operation``, as the engine will.

Used until the workflow engine is on main: two parallel branches after a first step, one retried and failing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from opscore_project.observability import events
from opscore_project.observability.models import OperationEvent
from opscore_project.observability.oplog import log_operation


def run_workflow(session_id: str = "sess-demo", *, start: datetime | None = None) -> list[OperationEvent]:
    start = start or timezone.now() - timedelta(seconds=30)
    written: list[OperationEvent] = []

    def emit(offset_s: float, event_type: str, level: str = "info", message: str = "", **kw) -> None:
        context = kw.pop("context", {})
        context.setdefault("workflow_id", "wf-report")
        event = log_operation(event_type, context, level=level, message=message, session_id=session_id, **kw)
        OperationEvent.objects.filter(pk=event.pk).update(created_at=start + timedelta(seconds=offset_s))
        event.created_at = start + timedelta(seconds=offset_s)
        written.append(event)

    emit(0, events.SESSION_STARTED, message="Session started", agent_id="agent-a")
    # fetch: one agent, 4 s
    emit(0.1, events.TASK_DISPATCHED, agent_id="agent-a", task_id="run-fetch", context={"task": "fetch"})
    emit(0.3, events.TASK_RUNNING, agent_id="agent-a", task_id="run-fetch", context={"task": "fetch"})
    emit(
        4.3,
        events.TASK_COMPLETED,
        agent_id="agent-a",
        task_id="run-fetch",
        context={"task": "fetch", "duration_ms": 4000},
    )
    # two parallel branches
    emit(4.4, events.TASK_DISPATCHED, agent_id="agent-a", task_id="run-summarise", context={"task": "summarise"})
    emit(4.4, events.TASK_DISPATCHED, agent_id="agent-b", task_id="run-translate", context={"task": "translate"})
    emit(4.6, events.TASK_RUNNING, agent_id="agent-a", task_id="run-summarise", context={"task": "summarise"})
    emit(4.9, events.TASK_RUNNING, agent_id="agent-b", task_id="run-translate", context={"task": "translate"})
    emit(
        9.6,
        events.TASK_COMPLETED,
        agent_id="agent-a",
        task_id="run-summarise",
        context={"task": "summarise", "duration_ms": 5000},
    )
    emit(
        7.9,
        events.TASK_RETRIED,
        "warning",
        "Retrying translate",
        agent_id="agent-b",
        task_id="run-translate",
        context={"task": "translate", "attempt": 2},
    )
    emit(
        12.0,
        events.TASK_FAILED,
        "error",
        "translate failed",
        agent_id="agent-b",
        task_id="run-translate",
        context={"task": "translate", "duration_ms": 7100, "error": "Quota exceeded on translation API"},
    )
    emit(
        12.1,
        events.SESSION_FAILED,
        "error",
        "Session failed",
        agent_id="agent-a",
        context={"error": "Task translate failed"},
    )
    return written
