"""``log_operation``: record a lifecycle/workflow event in the operation log and the structured log."""

from __future__ import annotations

import logging
from typing import Any

from opscore_project.observability.models import OperationEvent

logger = logging.getLogger("opscore.operations")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


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
    """Record ``operation`` (an event type such as ``task.dispatched``) with its ids and context.

    Call it inside the transaction of the transition it describes, so the event exists iff the change does.
    """
    context = context or {}
    event = OperationEvent.objects.create(
        level=level,
        event_type=operation,
        agent_id=str(agent_id or ""),
        session_id=str(session_id or ""),
        task_id=str(task_id or ""),
        message=message,
        context=context,
    )
    logger.log(
        _LEVELS.get(level, logging.INFO),
        message or operation,
        extra={"event_type": operation, "agent_id": agent_id, "session_id": session_id, "task_id": task_id},
    )
    return event
