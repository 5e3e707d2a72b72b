"""Every write to agents and their state history."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from lifecycle.controls import clean_capabilities, replaces_capabilities
from lifecycle.hooks import StateReportResult, notify_state_listeners, state_probes
from lifecycle.models import (
    AGENTKIT_CAPABILITY_SOURCES,
    Agent,
    AgentSource,
    AgentStateRecord,
    BreakerState,
    CapabilitiesSource,
    takes_tasks,
    takes_tasks_sql,
)
from opscore_project.errors import ValidationFailed
from opscore_project.lib.db import fetchall_server_bound, fetchone_idempotent
from opscore_project.observability import events
from opscore_project.observability.context import get_request_id
from opscore_project.observability.models import OperationEvent
from opscore_project.observability.oplog import operation_event

logger = logging.getLogger("opscore.operations")

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
    RETURNING id, state, state_timestamp, assigned_task, drained_at, breaker_state, quarantined_until,
              (xmax = 0) AS created
), inserted AS (
    INSERT INTO lifecycle_agentstaterecord (agent_id, state, details, reported_at, received_at)
    SELECT id, %(state)s, %(details)s::jsonb, %(reported_at)s, %(now)s FROM upserted
    ON CONFLICT (agent_id, reported_at, state) DO NOTHING
    RETURNING id
){ctes}, logged AS (
    -- Operation log, in the same statement: agent.discovered for a new agent, agent.state_changed when the
    -- current state differs from the previous one. Nothing is written for a report that changes nothing.
    INSERT INTO observability_operationevent (
        created_at, level, event_type, agent_id, session_id, task_id, message, context, request_id
    )
    SELECT %(now)s, 'info', kind.event_type, %(agent_id)s, '', '',
           CASE WHEN kind.event_type = 'agent.discovered' THEN 'Agent first seen in a state report'
                ELSE 'State ' || COALESCE(NULLIF((SELECT state FROM previous), ''), '(none)')
                     || ' -> ' || upserted.state
           END,
           jsonb_build_object('from', COALESCE((SELECT state FROM previous), ''), 'to', upserted.state,
                              'source', 'state_report', 'reported_at', %(reported_at)s::timestamptz),
           %(request_id)s
    FROM upserted
    CROSS JOIN (VALUES ('agent.discovered'), ('agent.state_changed')) AS kind (event_type)
    WHERE (kind.event_type = 'agent.discovered' AND upserted.created)
       OR (kind.event_type = 'agent.state_changed'
           AND upserted.state IS DISTINCT FROM COALESCE((SELECT state FROM previous), ''))
)
SELECT upserted.id, upserted.created, upserted.assigned_task,
       (upserted.state = %(state)s AND upserted.state_timestamp = %(reported_at)s) AS became_current,
       EXISTS (SELECT 1 FROM inserted) AS stored,
       COALESCE((SELECT state FROM previous), '') AS previous_state{probes}
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
    # An agent may announce its capabilities (docs/agentkit.md): only reports carrying the key pay for it.
    announced = _announced_capabilities(details) if "capabilities" in details else None
    if settings.IS_POSTGRES:
        result = _state_report_postgres(agent_id, state, details, reported_at, now, announced)
    else:
        result = _state_report_generic(agent_id, state, details, reported_at, now, announced)
    # The operation-log rows were written by the statement itself; this is their structured log line. A state change
    # logs at DEBUG: at thousands of reports per second the request line (with the agent id) and the
    # agent.state_changed row already say it, and formatting a second line costs ~15% of the request (measured).
    level = logging.INFO if result.agent_created else logging.DEBUG
    changed = result.agent_created or (result.became_current and state != result.previous_state)
    if changed and logger.isEnabledFor(level):
        logger.log(
            level,
            "Agent %s state %s -> %s",
            agent_id,
            result.previous_state or "(none)",
            state,
            extra={
                "event_type": events.AGENT_DISCOVERED if result.agent_created else events.AGENT_STATE_CHANGED,
                "agent_id": agent_id,
            },
        )
    notify_state_listeners(result)
    return result


def _state_report_postgres(
    agent_id: str,
    state: str,
    details: dict[str, Any],
    reported_at: datetime,
    now: datetime,
    announced: list[str] | None = None,
) -> StateReportResult:
    params = {
        "agent_id": agent_id,
        "state": state,
        "details": json.dumps(details, separators=(",", ":")),
        "reported_at": reported_at,
        "now": now,
        "request_id": get_request_id(),
    }
    # One round trip, prepared on the server after a few calls; see opscore_project.lib.db.
    names, sql = _state_report_statement(with_capabilities=announced is not None)
    if announced is not None:
        params["capabilities"] = json.dumps(announced)
        params["capabilities_text"] = ", ".join(announced) or "(none)"
    for probe in state_probes().values():
        if probe.params is not None:
            params.update(probe.params(agent_id, state, details))
    row = fetchone_idempotent(sql, params)
    pk, created, assigned_task, became_current, stored, previous_state = row[:6]
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
        probes=dict(zip(names, map(bool, row[6:]), strict=True)),
    )


def _state_report_statement(*, with_capabilities: bool = False) -> tuple[list[str], str]:
    """The state write with the registered probes as extra result columns (built once per process); with
    ``with_capabilities``, its variant that also stores capabilities the report announces."""
    global _statement_cache
    probes = state_probes()
    if _statement_cache is None or _statement_cache[0] != list(probes):
        columns = "".join(f",\n       ({probe.expression}) AS probe_{name}" for name, probe in probes.items())
        ctes = "".join(f", {probe.cte.strip()}" for probe in probes.values() if probe.cte)
        sql = _STATE_REPORT_SQL.replace("{probes}", columns).replace("{ctes}", ctes)
        _statement_cache = (list(probes), sql, None)
    if not with_capabilities:
        return _statement_cache[0], _statement_cache[1]
    if _statement_cache[2] is None:  # built on first use: only reports announcing capabilities depend on it
        _statement_cache = (*_statement_cache[:2], _with_announced_capabilities(_statement_cache[1]))
    return _statement_cache[0], _statement_cache[2]


_statement_cache: tuple[list[str], str, str | None] | None = None

# The variant of the state write for a report whose details carry ``capabilities`` (a list of strings): they become
# the agent's known capabilities with source ``report`` if the report is the newest and AgentKit gave no non-empty
# list; an ``agent.capabilities_set`` event is written when that changes anything. Built from _STATE_REPORT_SQL by
# replacing exact fragments (checked), so the plain statement stays as it is.
_ANNOUNCED_APPLY = (
    "(lifecycle_agent.state_timestamp IS NULL OR EXCLUDED.state_timestamp >= lifecycle_agent.state_timestamp) "
    "AND NOT (lifecycle_agent.capabilities_source IN ('webhook', 'poll') AND lifecycle_agent.capabilities <> '[]')"
)
_ANNOUNCED_EDITS = (
    ("SELECT state FROM lifecycle_agent WHERE agent_id = %(agent_id)s",
     "SELECT state, capabilities, capabilities_known, capabilities_source FROM lifecycle_agent "
     "WHERE agent_id = %(agent_id)s"),
    ("assigned_task, created_at, updated_at\n    ) VALUES (",
     "assigned_task, created_at, updated_at, capabilities_source\n    ) VALUES ("),
    ("%(agent_id)s, '', '', '[]'::jsonb, false,", "%(agent_id)s, '', '', %(capabilities)s::jsonb, true,"),
    ("%(now)s, '', %(now)s, %(now)s\n    )", "%(now)s, '', %(now)s, %(now)s, 'report'\n    )"),
    ("        updated_at = EXCLUDED.updated_at\n    RETURNING id, state, state_timestamp, assigned_task,",
     f"        updated_at = EXCLUDED.updated_at,\n"
     f"        capabilities = CASE WHEN {_ANNOUNCED_APPLY} THEN EXCLUDED.capabilities "
     "ELSE lifecycle_agent.capabilities END,\n"
     f"        capabilities_known = CASE WHEN {_ANNOUNCED_APPLY} THEN true "
     "ELSE lifecycle_agent.capabilities_known END,\n"
     f"        capabilities_source = CASE WHEN {_ANNOUNCED_APPLY} THEN 'report' "
     "ELSE lifecycle_agent.capabilities_source END\n"
     "    RETURNING id, state, state_timestamp, assigned_task, capabilities, capabilities_source,"),
    ("\n), logged AS (", """
), announced AS (
    INSERT INTO observability_operationevent (
        created_at, level, event_type, agent_id, session_id, task_id, message, context, request_id
    )
    SELECT %(now)s, 'info', 'agent.capabilities_set', %(agent_id)s, '', '',
           'Capabilities announced in a state report: ' || %(capabilities_text)s,
           jsonb_build_object('source', 'report', 'capabilities', upserted.capabilities,
                              'previous', jsonb_build_object(
                                  'capabilities', (SELECT CASE WHEN capabilities_known THEN capabilities END
                                                   FROM previous),
                                  'source', COALESCE((SELECT capabilities_source FROM previous), ''))),
           %(request_id)s
    FROM upserted
    WHERE upserted.capabilities_source = 'report'
      AND NOT EXISTS (SELECT 1 FROM previous WHERE capabilities_known AND capabilities_source = 'report'
                                              AND capabilities = upserted.capabilities)
), logged AS ("""),
)  # fmt: skip


def _with_announced_capabilities(sql: str) -> str:
    for old, new in _ANNOUNCED_EDITS:
        if sql.count(old) != 1:
            raise RuntimeError(f"The state write changed: cannot add announced capabilities at {old!r}")
        sql = sql.replace(old, new)
    return sql


def _announced_capabilities(details: dict[str, Any]) -> list[str] | None:
    """``details.capabilities`` if it is a valid list of capability names, else None (the report is accepted all
    the same: a report is never refused for what its free-form details say)."""
    try:
        return clean_capabilities(details.get("capabilities"))
    except ValidationFailed:
        return None


def _evaluate_probes(agent_id: str, state: str, now: datetime) -> dict[str, bool]:
    """The generic path's probes, one query each (only the embedded SQLite mode comes here; evaluated after the
    write rather than before it, which no registered probe depends on)."""
    results = {}
    with connection.cursor() as cursor:
        for name, probe in state_probes().items():
            if probe.cte:
                results[name] = False  # Postgres-only: the listener does the work itself
                continue
            cursor.execute(f"SELECT ({probe.expression})", {"agent_id": agent_id, "state": state, "now": now})
            results[name] = bool(cursor.fetchone()[0])
    return results


@transaction.atomic
def _state_report_generic(
    agent_id: str,
    state: str,
    details: dict[str, Any],
    reported_at: datetime,
    now: datetime,
    announced: list[str] | None = None,
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
        from_agentkit = agent.capabilities_source in AGENTKIT_CAPABILITY_SOURCES and agent.capabilities
        if announced is not None and not from_agentkit:
            same = agent.capabilities_known and agent.capabilities_source == "report"
            if not (same and agent.capabilities == announced):
                log_announced = {"capabilities": agent.capabilities if agent.capabilities_known else None}
                log_announced["source"] = agent.capabilities_source
                OperationEvent.objects.create(
                    created_at=now,
                    event_type=events.AGENT_CAPABILITIES_SET,
                    agent_id=agent_id,
                    message=f"Capabilities announced in a state report: {', '.join(announced) or '(none)'}",
                    context={"source": "report", "capabilities": announced, "previous": log_announced},
                    request_id=get_request_id(),
                )
            agent.capabilities, agent.capabilities_known = announced, True
            agent.capabilities_source = CapabilitiesSource.REPORT
    agent.last_seen_at = max(filter(None, [agent.last_seen_at, now]))
    agent.updated_at = now
    agent.save()
    _record_state_events(agent_id, created, previous_state, agent.state, reported_at, now)
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
        probes=_evaluate_probes(agent_id, state, now),
    )


def _record_state_events(
    agent_id: str, created: bool, previous_state: str, current_state: str, reported_at: datetime, now: datetime
) -> None:
    """The generic path's twin of the ``logged`` CTE in ``_STATE_REPORT_SQL`` (keep them equivalent)."""
    context = {"from": previous_state, "to": current_state, "source": "state_report", "reported_at": reported_at}
    rows = []
    if created:
        rows.append((events.AGENT_DISCOVERED, "Agent first seen in a state report"))
    if current_state != previous_state:
        rows.append((events.AGENT_STATE_CHANGED, f"State {previous_state or '(none)'} -> {current_state}"))
    OperationEvent.objects.bulk_create(
        OperationEvent(
            created_at=now,
            event_type=event_type,
            agent_id=agent_id,
            message=message,
            context={**context, "reported_at": reported_at.isoformat()},
            request_id=get_request_id(),
        )
        for event_type, message in rows
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
) -> tuple[Agent, str]:
    """Create or fill in an agent's registration details; never touches its current state.

    A deregistered agent (or one known only from its state reports) that registers is marked registered.
    Returns (agent, outcome) with outcome ``created``, ``registered`` (newly registered), ``updated`` (details
    changed) or ``unchanged`` (nothing written: the same registration twice is idempotent).
    """
    now = now or timezone.now()
    with transaction.atomic():
        agent, created = Agent.objects.select_for_update().get_or_create(
            agent_id=agent_id,
            defaults={"source": source, "created_at": now, "registered_at": now},
        )
        registered = agent.registered_at is not None and agent.deregistered_at is None
        capabilities_source = CapabilitiesSource.POLL if source == AgentSource.POLL else CapabilitiesSource.WEBHOOK
        previous_source, previous = agent.capabilities_source, list(agent.capabilities or [])
        if agent.capabilities_known and not replaces_capabilities(previous_source, capabilities):
            capabilities, capabilities_source = previous, previous_source  # an empty list keeps them
        if created:
            outcome = "created"
        elif not registered:
            outcome = "registered"
        elif _same_capabilities_source(previous_source, capabilities_source) and _same_registration(
            (agent.name, agent.version, agent.capabilities, agent.capabilities_known, agent.contact_endpoint,
             agent.metadata),
            name=name, version=version, capabilities=capabilities, contact_endpoint=contact_endpoint,
            metadata=metadata,
        ):  # fmt: skip
            return agent, "unchanged"
        else:
            outcome = "updated"
        if (
            agent.capabilities_known
            and previous_source not in AGENTKIT_CAPABILITY_SOURCES
            and (capabilities_source != previous_source)
        ):
            _capabilities_replaced_event(agent_id, capabilities_source, previous_source, previous, capabilities).save(
                force_insert=True
            )
        agent.name, agent.version = name, version
        agent.capabilities, agent.capabilities_known = list(capabilities), True
        agent.capabilities_source = capabilities_source
        agent.contact_endpoint, agent.metadata = contact_endpoint, metadata
        if agent.registered_at is None or agent.deregistered_at is not None:
            agent.registered_at = now
        agent.deregistered_at = None
        agent.updated_at = now
        agent.save()
    return agent, outcome


def _capabilities_replaced_event(
    agent_id: str, source: str, previous_source: str, previous: list, capabilities: list
) -> OperationEvent:
    """AgentKit's registration (webhook or poll) replaced capabilities an operator or a report had set."""
    return operation_event(
        events.AGENT_CAPABILITIES_SET,
        {
            "source": source,
            "capabilities": list(capabilities),
            "previous": {"capabilities": previous, "source": previous_source},
        },
        agent_id=agent_id,
        message=f"Capabilities of {agent_id} set by {previous_source} replaced by AgentKit's ({source}): "
        f"{', '.join(capabilities) or '(none)'}",
    )


def _same_capabilities_source(current: str, new: str) -> bool:
    """Webhook and poll both mean "from AgentKit": an agent seen through both is not rewritten for that alone."""
    return current == new or (current in AGENTKIT_CAPABILITY_SOURCES and new in AGENTKIT_CAPABILITY_SOURCES)


def _same_registration(
    current: tuple, *, name: str, version: str, capabilities: list[str], contact_endpoint: str, metadata: dict
) -> bool:
    """Whether stored (name, version, capabilities, capabilities_known, contact_endpoint, metadata) already say
    what a registration or listing says: then there is nothing to write."""
    return tuple(current) == (name, version, list(capabilities), True, contact_endpoint, dict(metadata))


def agent_deregister(*, agent_id: str, now: datetime | None = None) -> bool:
    """Mark an agent deregistered (kept with its history). Returns False if it was unknown or already so."""
    now = now or timezone.now()
    changed = Agent.objects.filter(agent_id=agent_id, deregistered_at__isnull=True).update(
        deregistered_at=now, updated_at=now
    )
    return changed == 1


def agent_claim_idle(*, agent_pk: int, task_ref: str, now: datetime | None = None) -> bool:
    """Claim an agent for a task only if it is free, idle, registered and eligible right now (compare-and-swap).

    The engine's dispatch CAS: reading a free idle agent and claiming it are separate statements, so the
    claim re-checks everything the choice relied on. True if claimed.
    """
    now = now or timezone.now()
    trial = Case(When(breaker_state=BreakerState.OPEN, then=Value(BreakerState.HALF_OPEN)), default=F("breaker_state"))
    return (
        Agent.objects.filter(
            takes_tasks(now), pk=agent_pk, assigned_task="", state="idle", deregistered_at__isnull=True
        ).update(assigned_task=task_ref, last_assigned_at=now, updated_at=now, breaker_state=trial)
        == 1
    )


# The engine's bulk claim: a compare-and-swap per agent in one statement. Only agents still free, idle, registered,
# not drained and not quarantined (or past their cool-down) are claimed; the rest are left for the next pass. An
# agent claimed after its cool-down takes its one trial task: its breaker goes half-open.
_CLAIM_SQL = f"""
UPDATE lifecycle_agent AS agent
SET assigned_task = claim.task_ref, last_assigned_at = %(now)s, updated_at = %(now)s,
    breaker_state = CASE WHEN agent.breaker_state = 'open' THEN 'half_open' ELSE agent.breaker_state END
FROM unnest(%(pks)s::bigint[], %(refs)s::text[]) AS claim (pk, task_ref)
WHERE agent.id = claim.pk AND agent.assigned_task = '' AND agent.state = 'idle' AND agent.deregistered_at IS NULL
  AND {takes_tasks_sql("agent", "%(now)s")}
RETURNING agent.id
"""


def agents_claim_idle(*, claims: dict[int, str], now: datetime) -> set[int]:
    """Claim each agent (pk) for its task ref if it is still free, idle and registered. The claimed pks."""
    if not claims:
        return set()
    if settings.IS_POSTGRES:
        rows = fetchall_server_bound(_CLAIM_SQL, {"pks": list(claims), "refs": list(claims.values()), "now": now})
        return {row[0] for row in rows}
    return {pk for pk, ref in claims.items() if agent_claim_idle(agent_pk=pk, task_ref=ref, now=now)}


# --- bulk registration from AgentKit's listing (the polling sync) ----------------------------------------------

# Rows per bulk_create batch (SQLite): 2,000 x 17 columns stays well under the bind-parameter limits.
SYNC_BATCH_SIZE = 2000
# Rows per array-parameter upsert (Postgres): no parameter limit, this only bounds the statement's size.
SYNC_UPSERT_BATCH_SIZE = 10_000
_SYNC_UPDATE_FIELDS = [
    "name",
    "version",
    "capabilities",
    "capabilities_known",
    "capabilities_source",
    "contact_endpoint",
    "metadata",
    "registered_at",
    "deregistered_at",
    "updated_at",
]


class AgentListing(Protocol):
    """One agent as AgentKit lists it (``agentkit_bridge.client.ListedAgent`` has this shape)."""

    agent_id: str
    name: str
    version: str
    capabilities: list[str]
    contact_endpoint: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class SyncCounts:
    """What one listing sync changed; ids so the caller can log each agent's transition."""

    listed: int
    added_ids: tuple[str, ...] = ()  # new agents (source "poll")
    updated_ids: tuple[str, ...] = ()  # registration details changed (includes filled_in_ids)
    filled_in_ids: tuple[str, ...] = ()  # known only from state reports until now
    reregistered_ids: tuple[str, ...] = ()  # deregistered before, listed again
    deregistered_ids: tuple[str, ...] = ()  # registered before, missing from the listing

    @property
    def added(self) -> int:
        return len(self.added_ids)

    @property
    def updated(self) -> int:
        return len(self.updated_ids)

    @property
    def reregistered(self) -> int:
        return len(self.reregistered_ids)

    @property
    def deregistered(self) -> int:
        return len(self.deregistered_ids)


def agents_sync_listing(*, listed: Sequence[AgentListing], now: datetime) -> SyncCounts:
    """Make the agents table agree with AgentKit's full listing; never touches current-state fields.

    - A listed agent Ops-Core does not know is created (source ``poll``, capabilities known).
    - A known agent whose registration details differ is updated; one known only from state reports is
      filled in and marked registered; a deregistered one is registered again. Its source is kept.
    - A registered agent missing from the listing is marked deregistered (kept, with its history). Only agents
      AgentKit told us about (``registered_at`` set) are: an agent known only from its own state reports was
      never on AgentKit's list (its webhook may be lost, contract 1b), so its absence proves nothing.

    ``now`` must be read *before* the listing was requested: an agent registered by webhook while the listing
    was in flight is newer than the listing and is not deregistered by it.

    The query count does not depend on the number of agents (Postgres): one SELECT of the registration fields of
    the listed and the registered agents, one INSERT ... ON CONFLICT DO UPDATE per SYNC_UPSERT_BATCH_SIZE new or
    changed rows (``bulk_create`` in batches of SYNC_BATCH_SIZE on SQLite), one UPDATE for the deregistrations.
    The set differences are computed here rather than with an anti-join in SQL, whose speed would depend on the
    planner's row estimates. One transaction.
    """
    by_id = {item.agent_id: item for item in listed}
    ids = sorted(by_id)
    existing: dict[str, tuple] = {}
    unlisted: list[str] = []  # registered agents missing from the listing
    for row in _registration_rows(ids):
        if row[0] in by_id:
            existing[row[0]] = row
        elif row[8] is None and row[7] is not None and row[7] < now:
            unlisted.append(row[0])
    rows: list[Agent] = []
    added, updated, filled_in, reregistered = [], [], [], []
    replaced: list[tuple[str, str, list, list]] = []  # capabilities an operator or a report had set
    for agent_id in ids:  # sorted: concurrent upserts then lock rows in the same order
        item = by_id[agent_id]
        capabilities, metadata = list(item.capabilities), dict(item.metadata)
        current = existing.get(agent_id)
        registered_at = now
        capabilities_source = CapabilitiesSource.POLL
        if current is None:
            added.append(agent_id)
        else:
            _, name, version, caps, caps_known, endpoint, meta, current_registered_at, deregistered_at, caps_source = (
                current
            )
            if caps_known and not replaces_capabilities(caps_source, capabilities):
                capabilities, capabilities_source = list(caps), caps_source  # an empty listing keeps them
            elif caps_known and caps_source not in AGENTKIT_CAPABILITY_SOURCES:
                replaced.append((agent_id, caps_source, caps, capabilities))
            if deregistered_at is not None:
                reregistered.append(agent_id)
            elif current_registered_at is None:
                filled_in.append(agent_id)
                updated.append(agent_id)
            elif _same_capabilities_source(caps_source, capabilities_source) and _same_registration(
                (name, version, caps, caps_known, endpoint, meta),
                name=item.name,
                version=item.version,
                capabilities=capabilities,
                contact_endpoint=item.contact_endpoint,
                metadata=metadata,
            ):
                continue  # unchanged: no write at all
            else:
                updated.append(agent_id)
                registered_at = current_registered_at
        rows.append(
            Agent(
                agent_id=agent_id,
                name=item.name,
                version=item.version,
                capabilities=capabilities,
                capabilities_known=True,
                capabilities_source=capabilities_source,
                contact_endpoint=item.contact_endpoint,
                metadata=metadata,
                source=AgentSource.POLL,
                registered_at=registered_at,
                deregistered_at=None,
                created_at=now,
                updated_at=now,
            )
        )
    with transaction.atomic():
        if rows and settings.IS_POSTGRES:
            _upsert_registrations_postgres(rows, now)
        elif rows:
            Agent.objects.bulk_create(
                rows,
                batch_size=SYNC_BATCH_SIZE,
                update_conflicts=True,
                unique_fields=["agent_id"],
                update_fields=_SYNC_UPDATE_FIELDS,
            )
        deregistered = _deregister(unlisted, now)
        if replaced:
            OperationEvent.objects.bulk_create(
                _capabilities_replaced_event(agent_id, CapabilitiesSource.POLL, previous_source, previous, new)
                for agent_id, previous_source, previous, new in replaced
            )
    return SyncCounts(
        listed=len(ids),
        added_ids=tuple(added),
        updated_ids=tuple(updated),
        filled_in_ids=tuple(filled_in),
        reregistered_ids=tuple(reregistered),
        deregistered_ids=tuple(sorted(deregistered)),
    )


# The same upsert as bulk_create(update_conflicts=True, update_fields=_SYNC_UPDATE_FIELDS), with one array
# parameter per column instead of one parameter per value: 3-4x faster for 10,000 rows (bench_discovery).
# Only registration fields are updated on conflict: the current state and the source are never touched.
_SYNC_UPSERT_SQL = """
INSERT INTO lifecycle_agent (
    agent_id, name, version, capabilities, capabilities_known, contact_endpoint, metadata, source,
    registered_at, deregistered_at, state, state_details, assigned_task, created_at, updated_at, capabilities_source
)
SELECT agent_id, name, version, capabilities::jsonb, true, contact_endpoint, metadata::jsonb, %(source)s,
       registered_at, NULL, '', '{}'::jsonb, '', %(now)s, %(now)s, capabilities_source
FROM unnest(%(agent_ids)s::text[], %(names)s::text[], %(versions)s::text[], %(capabilities)s::text[],
            %(endpoints)s::text[], %(metadata)s::text[], %(registered_at)s::timestamptz[],
            %(capabilities_sources)s::text[])
     AS listed(agent_id, name, version, capabilities, contact_endpoint, metadata, registered_at, capabilities_source)
ON CONFLICT (agent_id) DO UPDATE SET
    name = EXCLUDED.name, version = EXCLUDED.version, capabilities = EXCLUDED.capabilities,
    capabilities_known = true, capabilities_source = EXCLUDED.capabilities_source,
    contact_endpoint = EXCLUDED.contact_endpoint, metadata = EXCLUDED.metadata,
    registered_at = EXCLUDED.registered_at, deregistered_at = NULL, updated_at = EXCLUDED.updated_at
"""


def _upsert_registrations_postgres(rows: list[Agent], now: datetime) -> None:
    with connection.cursor() as cursor:
        for start in range(0, len(rows), SYNC_UPSERT_BATCH_SIZE):
            batch = rows[start : start + SYNC_UPSERT_BATCH_SIZE]
            cursor.execute(
                _SYNC_UPSERT_SQL,
                {
                    "source": AgentSource.POLL,
                    "now": now,
                    "agent_ids": [a.agent_id for a in batch],
                    "names": [a.name for a in batch],
                    "versions": [a.version for a in batch],
                    "capabilities": [json.dumps(a.capabilities) for a in batch],
                    "endpoints": [a.contact_endpoint for a in batch],
                    "metadata": [json.dumps(a.metadata) for a in batch],
                    "registered_at": [a.registered_at for a in batch],
                    "capabilities_sources": [a.capabilities_source for a in batch],
                },
            )


def _registration_rows(ids: list[str]) -> list[tuple]:
    """Registration fields of the listed agents and of every currently registered one."""
    fields = (
        "agent_id",
        "name",
        "version",
        "capabilities",
        "capabilities_known",
        "contact_endpoint",
        "metadata",
        "registered_at",
        "deregistered_at",
        "capabilities_source",
    )
    registered = Q(registered_at__isnull=False, deregistered_at__isnull=True)
    if settings.IS_POSTGRES:
        # One array parameter rather than an IN list of 10,000 placeholders (Postgres hashes it).
        listed = Agent.objects.extra(where=["agent_id = ANY(%s)"], params=[ids])
        return list((listed | Agent.objects.filter(registered)).values_list(*fields))
    rows = {row[0]: row for row in Agent.objects.filter(registered).values_list(*fields)}
    for start in range(0, len(ids), 500):  # SQLite: stay under its bound-variable limit
        rows.update(
            (row[0], row) for row in Agent.objects.filter(agent_id__in=ids[start : start + 500]).values_list(*fields)
        )
    return list(rows.values())


def _deregister(agent_ids: list[str], now: datetime) -> list[str]:
    """Mark these registered agents deregistered; returns those that still were registered (race-safe)."""
    if not agent_ids:
        return []
    if settings.IS_POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE lifecycle_agent SET deregistered_at = %s, updated_at = %s "
                "WHERE agent_id = ANY(%s) AND deregistered_at IS NULL RETURNING agent_id",
                [now, now, agent_ids],
            )
            return [row[0] for row in cursor.fetchall()]
    changed: list[str] = []
    for start in range(0, len(agent_ids), 500):
        chunk = agent_ids[start : start + 500]
        Agent.objects.filter(agent_id__in=chunk, deregistered_at__isnull=True).update(
            deregistered_at=now, updated_at=now
        )
        changed.extend(chunk)
    return changed
