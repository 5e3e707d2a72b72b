"""The bridge's writes: polling sync runs, registration webhooks, dispatch attempts.

Agent rows themselves are written by ``lifecycle.services``; this module adds the bridge's own records
(SyncRun, DispatchAttempt) and the operation-log events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from agentkit_bridge import client
from agentkit_bridge.exceptions import AgentKitError, ListingUnsupported
from agentkit_bridge.models import SyncOutcome, SyncRun
from lifecycle import services as lifecycle_services
from lifecycle.models import AgentSource
from opscore_project.locks import try_lock
from opscore_project.observability.models import OperationEvent
from opscore_project.observability.oplog import log_operation

logger = logging.getLogger(__name__)

# Operation-log event types (the names of opscore_project.observability.events).
AGENT_DISCOVERED = "agent.discovered"
AGENT_REGISTERED = "agent.registered"
AGENT_DEREGISTERED = "agent.deregistered"
SYNC_RUN = "sync.run"
TASK_DISPATCH_ATTEMPT = "task.dispatch_attempt"
TASK_DISPATCH_FAILED = "task.dispatch_failed"

SYNC_LOCK_NAME = "agentkit_bridge.sync_agents"
# Sync runs are a diagnostic trail, not history: a 30 s interval writes ~2,900 rows a day.
SYNC_RUN_RETENTION = timedelta(days=14)
_EVENT_BATCH_SIZE = 2000


# --- polling sync ----------------------------------------------------------------------------------------------


def sync_agents_run(*, min_gap_seconds: float = 0.0) -> SyncRun:
    """Poll ``GET /v1/agents`` once and make the agents table agree with it; record a SyncRun.

    Skips (outcome ``skipped_locked``) when another sync holds the lock, or when a sync started less than
    ``min_gap_seconds`` ago (the periodic task passes half the interval: with two beats, each sends every tick).

    Listing unsupported by AgentKit (404/405, contract 1a) and AgentKit errors are recorded as outcomes, not
    raised; they are logged loudly only when the outcome differs from the previous run's, so a permanently
    unsupported listing is not logged every cycle. Database errors propagate (after an attempt to record the
    failed run).
    """
    started_at = timezone.now()
    started = time.monotonic()
    with try_lock(SYNC_LOCK_NAME) as acquired:
        if not acquired:
            logger.info("AgentKit sync skipped: another sync is still running")
            return SyncRun.objects.create(
                started_at=started_at, ended_at=timezone.now(), outcome=SyncOutcome.SKIPPED_LOCKED, duration_ms=0
            )
        previous = SyncRun.objects.exclude(outcome=SyncOutcome.SKIPPED_LOCKED).order_by("-started_at", "-id").first()
        if (
            previous is not None
            and min_gap_seconds
            and started_at - previous.started_at < timedelta(seconds=min_gap_seconds)
        ):
            logger.info("AgentKit sync skipped: this interval's sync already ran (another beat's tick)")
            return SyncRun.objects.create(
                started_at=started_at,
                ended_at=timezone.now(),
                outcome=SyncOutcome.SKIPPED_LOCKED,
                duration_ms=0,
                error=f"This interval's sync already ran (sync #{previous.pk}).",
            )
        run = SyncRun(started_at=started_at)
        try:
            # started_at is read before the request: agents registered by webhook meanwhile are newer than the
            # listing and must not be deregistered by it.
            listed = client.list_agents()
            counts = lifecycle_services.agents_sync_listing(listed=listed, now=started_at)
        except ListingUnsupported as exc:
            run.outcome, run.error = SyncOutcome.UNSUPPORTED, str(exc)
        except AgentKitError as exc:
            run.outcome, run.error = SyncOutcome.FAILED, str(exc)
        except Exception as exc:
            run.outcome, run.error = SyncOutcome.FAILED, f"{type(exc).__name__}: {exc}"
            _finish_sync_run(run, started, previous)
            raise
        else:
            run.outcome = SyncOutcome.SUCCESS
            run.listed, run.added, run.updated = counts.listed, counts.added, counts.updated
            run.deregistered, run.reregistered = counts.deregistered, counts.reregistered
            _log_sync_agent_events(counts, now=started_at)
        return _finish_sync_run(run, started, previous)


def _finish_sync_run(run: SyncRun, started: float, previous: SyncRun | None) -> SyncRun:
    run.ended_at = timezone.now()
    run.duration_ms = int((time.monotonic() - started) * 1000)
    changed = run.added or run.updated or run.deregistered or run.reregistered
    new_outcome = previous is None or (previous.outcome, previous.error) != (run.outcome, run.error)
    with transaction.atomic():
        run.save()
        if changed or new_outcome:
            level = "info" if run.outcome == SyncOutcome.SUCCESS else "warning"
            log_operation(
                SYNC_RUN,
                {
                    "outcome": run.outcome,
                    "listed": run.listed,
                    "added": run.added,
                    "updated": run.updated,
                    "deregistered": run.deregistered,
                    "reregistered": run.reregistered,
                    "durationMs": run.duration_ms,
                    "error": run.error,
                    "syncRunId": run.pk,
                },
                level=level,
                message=_sync_message(run),
            )
        else:
            # Same outcome as last time and nothing changed: the SyncRun row is enough.
            logger.debug("AgentKit sync: %s", _sync_message(run))
        SyncRun.objects.filter(started_at__lt=run.started_at - SYNC_RUN_RETENTION).delete()
    return run


def _sync_message(run: SyncRun) -> str:
    if run.outcome == SyncOutcome.UNSUPPORTED:
        return (
            f"AgentKit does not support listing agents; discovery relies on the registration webhook and state "
            f"reports until it does (polling continues). {run.error}"
        )
    if run.outcome == SyncOutcome.FAILED:
        return f"AgentKit sync failed: {run.error}"
    return (
        f"AgentKit sync: {run.listed} listed, {run.added} added, {run.updated} updated, "
        f"{run.deregistered} deregistered, {run.reregistered} re-registered"
    )


def _log_sync_agent_events(counts: lifecycle_services.SyncCounts, *, now: datetime) -> None:
    """One operation-log event per agent transition, written in batches (the query count stays constant)."""
    context = {"via": "poll"}
    events: list[OperationEvent] = []

    def add(event_type: str, ids: Iterable[str], message: str) -> None:
        events.extend(
            OperationEvent(
                created_at=now,
                level="info",
                event_type=event_type,
                agent_id=agent_id,
                message=message.format(agent_id=agent_id),
                context=context,
            )
            for agent_id in ids
        )

    # A new agent gets one event, not discovered + registered: a first import of 10,000 agents stays 10,000 rows.
    add(AGENT_DISCOVERED, counts.added_ids, "Agent {agent_id} discovered (and registered) by polling AgentKit.")
    registered = (*counts.filled_in_ids, *counts.reregistered_ids)
    add(AGENT_REGISTERED, registered, "Agent {agent_id} registered (listed by AgentKit).")
    add(AGENT_DEREGISTERED, counts.deregistered_ids, "Agent {agent_id} deregistered (no longer listed by AgentKit).")
    if events:
        OperationEvent.objects.bulk_create(events, batch_size=_EVENT_BATCH_SIZE)


# --- registration webhook --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    agent_id: str
    name: str
    version: str
    capabilities: list[str]
    contact_endpoint: str
    metadata: dict[str, Any]


def agent_registration_receive(*, registration: Registration, now: datetime | None = None) -> str:
    """Apply a REGISTER webhook (contract 1b). Returns ``created``, ``registered``, ``updated`` or ``unchanged``.

    Fills in an agent first seen through its state reports without touching its current state; its source stays
    the one Ops-Core first learned it from. The same registration twice changes nothing (idempotent).
    """
    now = now or timezone.now()
    r = registration
    with transaction.atomic():
        _, outcome = lifecycle_services.agent_register(
            agent_id=r.agent_id,
            name=r.name,
            version=r.version,
            capabilities=r.capabilities,
            contact_endpoint=r.contact_endpoint,
            metadata=r.metadata,
            source=AgentSource.WEBHOOK,
            now=now,
        )
        if outcome == "unchanged":
            return outcome
        if outcome == "created":
            log_operation(
                AGENT_DISCOVERED,
                {"via": "webhook"},
                agent_id=r.agent_id,
                message=f"Agent {r.agent_id} discovered by AgentKit's registration webhook.",
            )
        log_operation(
            AGENT_REGISTERED,
            {"via": "webhook", "outcome": outcome, "name": r.name, "capabilities": r.capabilities},
            agent_id=r.agent_id,
            message=f"Agent {r.agent_id} ({r.name or 'unnamed'}) registered through AgentKit's webhook.",
        )
    return outcome


def agent_deregistration_receive(*, agent_id: str, now: datetime | None = None) -> bool:
    """Apply a DEREGISTER webhook: mark the agent deregistered (kept with its history). Idempotent.

    Returns False when the agent was unknown or already deregistered (nothing changed).
    """
    now = now or timezone.now()
    with transaction.atomic():
        changed = lifecycle_services.agent_deregister(agent_id=agent_id, now=now)
        if changed:
            log_operation(
                AGENT_DEREGISTERED,
                {"via": "webhook"},
                agent_id=agent_id,
                message=f"Agent {agent_id} deregistered through AgentKit's webhook.",
            )
    return changed
