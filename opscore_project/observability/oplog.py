"""``log_operation``: record a lifecycle/workflow event in the operation log and the structured log."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from opscore_project.observability import events
from opscore_project.observability.context import get_request_id
from opscore_project.observability.counters import counters_add
from opscore_project.observability.logs import redact_text, redact_value
from opscore_project.observability.models import OperationEvent

logger = logging.getLogger("opscore.operations")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def operation_event(
    operation: str,
    context: dict[str, Any] | None = None,
    *,
    level: str = "info",
    message: str = "",
    agent_id: Any = "",
    session_id: Any = "",
    task_id: Any = "",
) -> OperationEvent:
    """An unsaved ``OperationEvent``: ids as text, the context redacted, the current request id attached."""
    return OperationEvent(
        level=level if level in _LEVELS else "info",
        event_type=operation,
        agent_id=str(agent_id or ""),
        session_id=str(session_id or ""),
        task_id=str(task_id or ""),
        message=redact_text(message),  # the stored message is read back by /events and the dashboard
        context=redact_value(dict(context or {})),
        request_id=get_request_id(),
    )


def log_operation(
    operation: str,
    context: dict[str, Any] | None = None,
    *,
    level: str = "info",
    message: str = "",
    agent_id: str = "",
    session_id: str = "",
    task_id: str = "",
) -> OperationEvent:
    """Record ``operation`` (an event type from ``observability.events``) with its ids and context.

    Writes one ``OperationEvent`` (with the current request id) and one JSON log line carrying the same ids, and
    counts it for ``/metrics`` once the surrounding transaction commits. Call it inside the transaction of the
    transition it describes, so the event exists iff the change does. Secrets in the message and secret-looking
    context keys are redacted.

    Context keys the dashboard and metrics understand: ``workflow_id``, ``duration_ms`` (task/session
    completions), ``error``, ``attempt``, ``outcome`` (``sync.run``: ``ok``/``failed``), ``from``/``to`` (states).
    """
    event = operation_event(
        operation, context, level=level, message=message, agent_id=agent_id, session_id=session_id, task_id=task_id
    )
    event.save(force_insert=True)
    level, context, message = event.level, event.context, event.message
    extra: dict[str, Any] = {"event_type": operation, "event_id": event.pk}
    for key, value in (("agent_id", agent_id), ("session_id", session_id), ("task_id", task_id)):
        if value:
            extra[key] = str(value)
    if context:
        extra["context"] = context
    logger.log(_LEVELS[level], message or operation, extra=extra)

    increments = counter_increments(operation, level, context)
    if increments:
        # Into this process's buffer once the change commits (opscore_project.observability.counters).
        transaction.on_commit(lambda: counters_add(increments))
    return event


TASK_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_TASK_ENDINGS = {events.TASK_COMPLETED: "completed", events.TASK_FAILED: "failed", events.TASK_TIMED_OUT: "timed_out"}


def _labels(**labels: str) -> str:
    return ",".join(f"{key}={str(value).replace(',', '_').replace('=', '_')}" for key, value in sorted(labels.items()))


def counter_increments(operation: str, level: str, context: dict[str, Any]) -> list[tuple[str, str, float]]:
    """The ``(counter, labels, amount)`` rows one event adds to."""
    rows: list[tuple[str, str, float]] = [("operation_events_total", _labels(type=operation, level=level), 1)]
    status = _TASK_ENDINGS.get(operation)
    duration_ms = context.get("duration_ms", context.get("durationMs"))
    if status and isinstance(duration_ms, (int, float)) and duration_ms >= 0:
        seconds = duration_ms / 1000
        bucket = next((str(le) for le in TASK_DURATION_BUCKETS if seconds <= le), "+Inf")
        rows += [
            ("task_duration_seconds_bucket", _labels(status=status, le=bucket), 1),
            ("task_duration_seconds_count", _labels(status=status), 1),
            ("task_duration_seconds_sum", _labels(status=status), seconds),
        ]
    return rows
