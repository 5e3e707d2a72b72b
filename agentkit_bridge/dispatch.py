"""The dispatch outbox: how the workflow engine asks the bridge to send tasks to agents through AgentKit.

The engine writes rows in the transaction that assigned the tasks (``dispatches_enqueue``) and discards the rows
of dispatches that stopped being current (``dispatches_discard``); the relay (``agentkit_bridge.relay``) sends
them, outside any transaction, and reports outcomes through ``agentkit_bridge.hooks``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app

from agentkit_bridge.models import DispatchOutbox
from opscore_project.lib.db import WriteBatch, bulk_insert_rows

logger = logging.getLogger(__name__)

# Dispatches per relay message: several messages let several Celery workers (or pool threads) POST in parallel.
RELAY_CHUNK = 16


def dispatches_enqueue(*, entries: list[dict[str, Any]], batch: WriteBatch | None = None) -> None:
    """Store dispatches (``dispatch_ref``, ``agent_id``, ``message``, ``session_id``) in the outbox, in the caller's
    transaction (or as part of its ``batch``). The caller relays them once it has committed (the engine loop does,
    right after its step); whatever is left unsent is found again by ``agentkit_bridge.relay.dispatches_overdue``."""
    if not entries:
        return
    rows = [
        DispatchOutbox(
            dispatch_ref=entry["dispatch_ref"],
            agent_id=entry["agent_id"],
            message=entry["message"],
            session_id=entry.get("session_id", ""),
        )
        for entry in entries
    ]
    bulk_insert_rows(DispatchOutbox, rows, batch=batch)


def dispatches_discard(*, dispatch_refs: list[str], batch: WriteBatch | None = None) -> None:
    """Forget unsent dispatches that are no longer current (the run ended, was retried or re-routed)."""
    if batch is not None:
        table = DispatchOutbox._meta.db_table
        batch.add(f'DELETE FROM "{table}" WHERE dispatch_ref = ANY(%s::text[])', [dispatch_refs])
    else:
        DispatchOutbox.objects.filter(dispatch_ref__in=dispatch_refs).delete()


def relay_request(refs: list[str]) -> bool:
    """Queue relay messages for these outbox refs on Celery (by task name: no import of the tasks module), for
    callers without a relay of their own (the periodic sweep). False if the broker could not be reached: the rows
    stay in the outbox and are picked up again."""
    try:
        for start in range(0, len(refs), RELAY_CHUNK):
            current_app.send_task("agentkit_bridge.tasks.relay_dispatches", args=[refs[start : start + RELAY_CHUNK]])
    except Exception:  # noqa: BLE001 - broker down: the engine loop retries from the outbox
        logger.warning("Could not queue the dispatch relay (%d dispatches wait in the outbox)", len(refs))
        return False
    return True


def dispatches_accepted_at(*, dispatch_refs: list[str]) -> dict[str, Any]:
    """When AgentKit accepted each of these dispatches (refs it never accepted are absent)."""
    from agentkit_bridge.models import DispatchAttempt, DispatchOutcomeKind

    rows = DispatchAttempt.objects.filter(dispatch_ref__in=dispatch_refs, outcome=DispatchOutcomeKind.ACCEPTED)
    return dict(rows.order_by().values_list("dispatch_ref", "created_at"))
