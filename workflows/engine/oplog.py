"""Operation-log rows written in bulk: one INSERT per engine batch, counters added once after commit."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.db import transaction

from opscore_project.lib.db import WriteBatch, bulk_insert_rows
from opscore_project.observability.counters import counters_add
from opscore_project.observability.models import OperationEvent
from opscore_project.observability.oplog import counter_increments, operation_event

logger = logging.getLogger("opscore.operations")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class EventBuffer:
    """Collects the events of one transaction; ``flush()`` writes them inside it (so they exist iff the change
    does) and adds their metric counters in one statement after the commit (counter rows are hot: never lock them
    inside the engine's transaction)."""

    def __init__(self) -> None:
        self.rows: list[OperationEvent] = []

    def add(
        self,
        operation: str,
        context: dict[str, Any] | None = None,
        *,
        level: str = "info",
        message: str = "",
        agent_id: str = "",
        session_id: Any = "",
        task_id: Any = "",
    ) -> None:
        self.rows.append(
            operation_event(
                operation,
                context,
                level=level,
                message=message,
                agent_id=agent_id,
                session_id=session_id,
                task_id=task_id,
            )
        )

    def flush(self, batch: WriteBatch | None = None) -> None:
        """Write the events now, or as part of ``batch`` (which the caller executes in this transaction)."""
        rows, self.rows = self.rows, []
        if not rows:
            return
        bulk_insert_rows(OperationEvent, rows, batch=batch)
        totals: dict[tuple[str, str], float] = defaultdict(float)
        for row in rows:
            for name, labels, amount in counter_increments(row.event_type, row.level, row.context):
                totals[(name, labels)] += amount
            # Info events log at DEBUG: the engine writes several per task, the operation log already holds them,
            # and one formatted JSON line each costs as much as the rest of the event (measured). Warnings and
            # errors keep their level.
            level = _LEVELS[row.level] if row.level in ("warning", "error") else logging.DEBUG
            if logger.isEnabledFor(level):
                extra = {"event_type": row.event_type}
                for key in ("agent_id", "session_id", "task_id"):
                    if getattr(row, key):
                        extra[key] = getattr(row, key)
                logger.log(level, row.message or row.event_type, extra=extra)
        increments = [(name, labels, amount) for (name, labels), amount in totals.items()]
        transaction.on_commit(lambda: counters_add(increments))
