"""Every write to agents and their state history."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from lifecycle.hooks import StateReportResult, notify_state_listeners
from lifecycle.models import Agent, AgentSource, AgentStateRecord
from opscore_project.lib.db import fetchone_idempotent

# One round trip per report: upsert the agent (the newest timestamp decides the current state), insert the
# history row unless it is an exact duplicate, and read the previous state from the statement's snapshot.
# All sub-statements of a WITH see the same snapshot, so `previous` is the row as it was before the upsert.
_STATE_REPORT_SQL = """
WITH previous AS (
    SELECT state FROM lifecycle_agent WHERE agent_id = %(agent_id)s
), upserted AS (
    INSERT INTO lifecycle_agent (
        agent_id, name, version, capabilities, capabilities_known, contact_endpoint, metadata, source,
        state, state_timestamp, state_details, last_seen_at, assigned_task, created_at, updated_at
    ) VALUES (
        %(agent_id)s, '', '', '[]'::jsonb, false, '', '{}'::jsonb, 'state_report',
        %(state)s, %(reported_at)s, %(details)s::jsonb, %(now)s, '', %(now)s, %(now)s
    )
    ON CONFLICT (agent_id) DO UPDATE SET
        state = CASE WHEN lifecycle_agent.state_timestamp IS NULL
                       OR EXCLUDED.state_timestamp >= lifecycle_agent.state_timestamp
                     THEN EXCLUDED.state ELSE lifecycle_agent.state END,
        state_details = CASE WHEN lifecycle_agent.state_timestamp IS NULL
                       OR EXCLUDED.state_timestamp >= lifecycle_agent.state_timestamp
                     THEN EXCLUDED.state_details ELSE lifecycle_agent.state_details END,
        state_timestamp = GREATEST(lifecycle_agent.state_timestamp, EXCLUDED.state_timestamp),
        last_seen_at = GREATEST(lifecycle_agent.last_seen_at, EXCLUDED.last_seen_at),
        updated_at = EXCLUDED.updated_at
    RETURNING id, state, state_timestamp, assigned_task, (xmax = 0) AS created
), inserted AS (
    INSERT INTO lifecycle_agentstaterecord (agent_id, state, details, reported_at, received_at)
    SELECT id, %(state)s, %(details)s::jsonb, %(reported_at)s, %(now)s FROM upserted
    ON CONFLICT (agent_id, reported_at, state) DO NOTHING
    RETURNING id
)
SELECT upserted.id, upserted.created, upserted.assigned_task,
       (upserted.state = %(state)s AND upserted.state_timestamp = %(reported_at)s) AS became_current,
       EXISTS (SELECT 1 FROM inserted) AS stored,
       COALESCE((SELECT state FROM previous), '') AS previous_state
FROM upserted
"""


def agent_state_report(
    *,
    agent_id: str,
    state: str,
    details: dict[str, Any],
    reported_at: datetime,
    now: datetime | None = None,
) -> StateReportResult:
    """Store one state report durably and update the agent's current state if the report is the newest.

    Creates an agent Ops-Core has not seen (source ``state_report``). An exact duplicate (same agent,
    timestamp and state) is not stored twice; an older report goes to the history only. One transaction.
    Registered state listeners (the workflow engine) run after the write.
    """
    now = now or timezone.now()
    if settings.IS_POSTGRES:
        result = _state_report_postgres(agent_id, state, details, reported_at, now)
    else:
        result = _state_report_generic(agent_id, state, details, reported_at, now)
    notify_state_listeners(result)
    return result


def _state_report_postgres(
    agent_id: str, state: str, details: dict[str, Any], reported_at: datetime, now: datetime
) -> StateReportResult:
    params = {
        "agent_id": agent_id,
        "state": state,
        "details": json.dumps(details, separators=(",", ":")),
        "reported_at": reported_at,
        "now": now,
    }
    # One round trip, prepared on the server after a few calls; see opscore_project.lib.db.
    pk, created, assigned_task, became_current, stored, previous_state = fetchone_idempotent(_STATE_REPORT_SQL, params)
    return StateReportResult(
        agent_pk=pk,
        agent_id=agent_id,
        state=state,
        details=details,
        reported_at=reported_at,
        received_at=now,
        agent_created=created,
        stored=stored,
        became_current=became_current,
        previous_state=previous_state,
        assigned_task=assigned_task,
    )


@transaction.atomic
def _state_report_generic(
    agent_id: str, state: str, details: dict[str, Any], reported_at: datetime, now: datetime
) -> StateReportResult:
    """The same semantics with the ORM, for the embedded SQLite mode."""
    agent, created = Agent.objects.select_for_update().get_or_create(
        agent_id=agent_id, defaults={"source": AgentSource.STATE_REPORT, "created_at": now}
    )
    previous_state = agent.state
    _, stored = AgentStateRecord.objects.get_or_create(
        agent=agent, reported_at=reported_at, state=state, defaults={"details": details, "received_at": now}
    )
    became_current = agent.state_timestamp is None or reported_at >= agent.state_timestamp
    if became_current:
        agent.state, agent.state_details, agent.state_timestamp = state, details, reported_at
    agent.last_seen_at = max(filter(None, [agent.last_seen_at, now]))
    agent.updated_at = now
    agent.save()
    return StateReportResult(
        agent_pk=agent.pk,
        agent_id=agent_id,
        state=state,
        details=details,
        reported_at=reported_at,
        received_at=now,
        agent_created=created,
        stored=stored,
        became_current=became_current,
        previous_state=previous_state,
        assigned_task=agent.assigned_task,
    )


def agent_register(
    *,
    agent_id: str,
    name: str,
    version: str,
    capabilities: list[str],
    contact_endpoint: str,
    metadata: dict[str, Any],
    source: str,
    now: datetime | None = None,
) -> tuple[Agent, bool]:
    """Create or fill in an agent's registration details; never touches its current state.

    A deregistered agent that registers again is marked registered. Returns (agent, created).
    """
    now = now or timezone.now()
    with transaction.atomic():
        agent, created = Agent.objects.select_for_update().get_or_create(
            agent_id=agent_id,
            defaults={"source": source, "created_at": now, "registered_at": now},
        )
        agent.name, agent.version = name, version
        agent.capabilities, agent.capabilities_known = list(capabilities), True
        agent.contact_endpoint, agent.metadata = contact_endpoint, metadata
        if agent.registered_at is None or agent.deregistered_at is not None:
            agent.registered_at = now
        agent.deregistered_at = None
        agent.updated_at = now
        agent.save()
    return agent, created


def agent_deregister(*, agent_id: str, now: datetime | None = None) -> bool:
    """Mark an agent deregistered (kept with its history). Returns False if it was unknown or already so."""
    now = now or timezone.now()
    changed = Agent.objects.filter(agent_id=agent_id, deregistered_at__isnull=True).update(
        deregistered_at=now, updated_at=now
    )
    return changed == 1


def agent_assign_task(*, agent_pk: int, task_ref: str, now: datetime | None = None) -> bool:
    """Claim a free agent for a task (compare-and-swap: only if nothing is assigned). True if claimed."""
    now = now or timezone.now()
    return (
        Agent.objects.filter(pk=agent_pk, assigned_task="").update(
            assigned_task=task_ref, last_assigned_at=now, updated_at=now
        )
        == 1
    )


def agent_release_task(*, task_ref: str, agent_pk: int | None = None) -> int:
    """Free the agent(s) holding ``task_ref``. Idempotent; returns how many were released."""
    query = Q(assigned_task=task_ref)
    if agent_pk is not None:
        query &= Q(pk=agent_pk)
    return Agent.objects.filter(query).update(assigned_task="")
