"""The dispatch relay: sends the outbox to AgentKit (``POST /v1/agents/{id}/run``) and records what happened.

A relay leases a few outbox rows (``leased_until``; SKIP LOCKED, so relays in other workers take other rows),
commits, POSTs them with no transaction open, then records every attempt in one transaction: accepted and final
rows leave the outbox, transient failures are due again after a backoff with jitter. A relay that dies between
the POST and its record leaves a lease that expires; the row is then sent again (AgentKit may get that dispatch
twice, and the engine still completes the run at most once).

Relay messages name the refs they were queued for. A ref no longer in the outbox and never accepted is a stale
message (its dispatch was retried, cancelled or re-routed since): it sends nothing and says so in the log.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from agentkit_bridge import client
from agentkit_bridge.exceptions import AgentKitError
from agentkit_bridge.hooks import DispatchOutcome, notify_dispatch_listeners
from agentkit_bridge.models import DispatchAttempt, DispatchOutbox, DispatchOutcomeKind
from lifecycle import services as lifecycle_services
from opscore_project.lib.db import bulk_insert_rows, bulk_insert_sql, execute_server_bound
from opscore_project.observability import events
from opscore_project.observability.counters import counters_add
from opscore_project.observability.models import OperationEvent
from opscore_project.observability.oplog import counter_increments, operation_event

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0


def backoff_seconds(attempt: int, *, base: float | None = None, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter before attempt ``attempt + 1``: base * 2^(attempt-1), between half and all
    of it (so retries of many dispatches spread out), at least AgentKit's Retry-After, at most 300 s."""
    base = settings.AGENTKIT_DISPATCH_BACKOFF_SECONDS if base is None else base
    ceiling = min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_BACKOFF_SECONDS)


@dataclass
class _Sent:
    row: DispatchOutbox
    outcome: str = DispatchOutcomeKind.ACCEPTED
    status_code: int | None = None
    error_kind: str = ""
    error: str = ""
    latency_ms: int = 0
    retry_in: float | None = None


@dataclass
class RelayReport:
    sent: int = 0
    accepted: int = 0
    retrying: int = 0
    failed: int = 0
    stale: list[str] = field(default_factory=list)


def dispatches_relay(*, refs: list[str] | None = None, limit: int = 16, now: datetime | None = None) -> RelayReport:
    """Send due outbox rows (those named by ``refs``, or the oldest due ones) and record the outcomes."""
    now = now or timezone.now()
    rows = _lease(refs, limit, now)
    report = RelayReport()
    if refs:
        report.stale = _stale_refs(set(refs) - {row.dispatch_ref for row in rows})
    results = [_send(row) for row in rows]
    if results:
        _record(results)
    report.sent = len(results)
    report.accepted = sum(r.outcome == DispatchOutcomeKind.ACCEPTED for r in results)
    report.retrying = sum(r.outcome == DispatchOutcomeKind.RETRYING for r in results)
    report.failed = sum(r.outcome == DispatchOutcomeKind.FAILED for r in results)
    return report


def dispatches_overdue(*, now: datetime, grace_seconds: float = 1.0, limit: int = 500) -> list[str]:
    """Refs due for sending that no relay holds, and that were not just queued (the relay message for a fresh row
    is normally on its way): lost messages, expired leases, retries whose backoff has passed."""
    return list(
        DispatchOutbox.objects.filter(next_attempt_at__lte=now - timedelta(seconds=grace_seconds))
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .order_by("id")
        .values_list("dispatch_ref", flat=True)[:limit]
    )


_LEASE_SQL = """
UPDATE agentkit_bridge_dispatchoutbox SET leased_until = %(until)s, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM agentkit_bridge_dispatchoutbox
    WHERE (%(refs)s::text[] IS NULL OR dispatch_ref = ANY(%(refs)s::text[]))
      AND next_attempt_at <= %(now)s AND (leased_until IS NULL OR leased_until < %(now)s)
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
)
RETURNING id, dispatch_ref, agent_id, message, session_id, attempts
"""


def _lease(refs: list[str] | None, limit: int, now: datetime) -> list[DispatchOutbox]:
    """Lease due rows (SKIP LOCKED: concurrent relays take different ones); one statement on Postgres."""
    until = now + timedelta(seconds=settings.OPSCORE_DISPATCH_LEASE_SECONDS)
    limit = max(limit, len(refs or ()))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_LEASE_SQL, {"until": until, "refs": refs, "now": now, "limit": limit})
            return [
                DispatchOutbox(
                    id=row[0],
                    dispatch_ref=row[1],
                    agent_id=row[2],
                    message=row[3] if isinstance(row[3], dict) else json.loads(row[3]),
                    session_id=row[4],
                    attempts=row[5],
                )
                for row in cursor.fetchall()
            ]
    with transaction.atomic():
        due = (
            DispatchOutbox.objects.select_for_update(skip_locked=True)
            .filter(next_attempt_at__lte=now)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        )
        if refs is not None:
            due = due.filter(dispatch_ref__in=refs)
        rows = list(due.order_by("id")[:limit])
        if rows:
            DispatchOutbox.objects.filter(pk__in=[row.pk for row in rows]).update(
                leased_until=until, attempts=F("attempts") + 1
            )
            for row in rows:
                row.attempts += 1
    return rows


def _stale_refs(missing: set[str]) -> list[str]:
    """Refs of a relay message that are gone from the outbox without ever being accepted: log them."""
    if not missing:
        return []
    still_there = set(DispatchOutbox.objects.filter(dispatch_ref__in=missing).values_list("dispatch_ref", flat=True))
    accepted = set(
        DispatchAttempt.objects.filter(dispatch_ref__in=missing, outcome=DispatchOutcomeKind.ACCEPTED).values_list(
            "dispatch_ref", flat=True
        )
    )
    stale = sorted(missing - still_there - accepted)
    if stale:
        OperationEvent.objects.bulk_create(
            operation_event(
                events.TASK_DISPATCH_STALE,
                {"dispatchRef": ref},
                level="warning",
                task_id=ref,
                message=f"Dispatch {ref} is no longer current (its run was retried, cancelled or re-routed): not sent",
            )
            for ref in stale
        )
        logger.warning("Relay message for %d dispatch(es) no longer current: not sent (%s)", len(stale), stale[:5])
    return stale


def _send(row: DispatchOutbox) -> _Sent:
    started = time.monotonic()
    try:
        accepted = client.run(row.agent_id, row.message)
    except AgentKitError as exc:
        sent = _Sent(row, status_code=exc.status_code, error_kind=exc.error_kind, error=exc.message)
        if exc.transient and row.attempts < 1 + settings.AGENTKIT_DISPATCH_MAX_RETRIES:
            sent.outcome = DispatchOutcomeKind.RETRYING
            sent.retry_in = backoff_seconds(row.attempts, retry_after=getattr(exc, "retry_after", None))
        else:
            sent.outcome = DispatchOutcomeKind.FAILED
            if exc.transient:
                sent.error = f"{exc.message} (gave up after {row.attempts} attempts)"
    else:
        sent = _Sent(row, status_code=accepted.status_code)
    sent.latency_ms = int((time.monotonic() - started) * 1000)
    return sent


def _record(results: list[_Sent]) -> None:
    now = timezone.now()
    if connection.vendor == "postgresql" and all(r.outcome == DispatchOutcomeKind.ACCEPTED for r in results):
        _record_accepted(results, now)
        return
    outcomes: list[DispatchOutcome] = []
    rows: list[OperationEvent] = []
    with transaction.atomic():
        bulk_insert_rows(DispatchAttempt, [_attempt_of(r, now) for r in results], ignore_conflicts=True)
        finished = [r.row.pk for r in results if r.outcome != DispatchOutcomeKind.RETRYING]
        DispatchOutbox.objects.filter(pk__in=finished).delete()
        for r in results:
            rows.extend(_events_of(r))
            if r.outcome == DispatchOutcomeKind.RETRYING:
                DispatchOutbox.objects.filter(pk=r.row.pk).update(
                    leased_until=None, next_attempt_at=now + timedelta(seconds=r.retry_in or 0)
                )
                continue
            if r.error_kind == "agent_unknown" and lifecycle_services.agent_deregister(
                agent_id=r.row.agent_id, now=now
            ):
                rows.append(
                    operation_event(
                        events.AGENT_DEREGISTERED,
                        {"via": "dispatch", "dispatchRef": r.row.dispatch_ref},
                        level="warning",
                        agent_id=r.row.agent_id,
                        message=f"Agent {r.row.agent_id} deregistered: AgentKit answered 404 on /run "
                        "(it no longer knows it).",
                    )
                )
            outcomes.append(_outcome_of(r, now))
        bulk_insert_rows(OperationEvent, rows)
        notify_dispatch_listeners(outcomes)
    _count(rows)


def _attempt_of(r: _Sent, now: datetime) -> DispatchAttempt:
    return DispatchAttempt(
        dispatch_ref=r.row.dispatch_ref,
        agent_id=r.row.agent_id,
        attempt=r.row.attempts,
        outcome=r.outcome,
        status_code=r.status_code,
        error_kind=r.error_kind,
        error=r.error[:4000],
        latency_ms=r.latency_ms,
        created_at=now,
    )


def _outcome_of(r: _Sent, now: datetime) -> DispatchOutcome:
    return DispatchOutcome(
        dispatch_ref=r.row.dispatch_ref,
        agent_id=r.row.agent_id,
        accepted=r.outcome == DispatchOutcomeKind.ACCEPTED,
        error_kind=r.error_kind,
        error=r.error,
        status_code=r.status_code,
        attempts=r.row.attempts,
        finished_at=now,
    )


def _record_accepted(results: list[_Sent], now: datetime) -> None:
    """The usual case, every dispatch accepted, in one statement: attempts stored, rows out of the outbox,
    operation-log rows written (atomic, as a single statement is; no transaction round trips)."""
    attempts_sql, attempts_params = bulk_insert_sql(
        DispatchAttempt, [_attempt_of(r, now) for r in results], ignore_conflicts=True
    )
    rows = [row for r in results for row in _events_of(r)]
    events_sql, events_params = bulk_insert_sql(OperationEvent, rows)
    execute_server_bound(
        f"WITH attempts AS ({attempts_sql}), "
        f'sent AS (DELETE FROM "{DispatchOutbox._meta.db_table}" WHERE id = ANY(%s::bigint[])) {events_sql}',
        [*attempts_params, [r.row.pk for r in results], *events_params],
    )
    notify_dispatch_listeners([_outcome_of(r, now) for r in results])
    _count(rows)


def _events_of(r: _Sent) -> list[OperationEvent]:
    ref, agent_id, attempt = r.row.dispatch_ref, r.row.agent_id, r.row.attempts
    context: dict[str, Any] = {
        "dispatchRef": ref,
        "attempt": attempt,
        "outcome": r.outcome,
        "statusCode": r.status_code,
        "errorKind": r.error_kind,
        "latencyMs": r.latency_ms,
    }
    if r.retry_in is not None:
        context["retryInSeconds"] = round(r.retry_in, 3)
    if r.outcome == DispatchOutcomeKind.ACCEPTED:
        message = f"Task {ref} accepted by AgentKit for agent {agent_id} (attempt {attempt})."
    elif r.outcome == DispatchOutcomeKind.RETRYING:
        message = f"Dispatch of {ref} to {agent_id} failed (attempt {attempt}), retrying: {r.error}"
    else:
        message = f"Dispatch of {ref} to {agent_id} failed for good (attempt {attempt}): {r.error}"
    common = {"agent_id": agent_id, "session_id": r.row.session_id, "task_id": ref, "message": message}
    level = "info" if r.outcome == DispatchOutcomeKind.ACCEPTED else "warning"
    rows = [operation_event(events.TASK_DISPATCH_ATTEMPT, context, level=level, **common)]
    if r.outcome == DispatchOutcomeKind.FAILED:
        rows.append(
            operation_event(events.TASK_DISPATCH_FAILED, {**context, "error": r.error}, level="error", **common)
        )
    return rows


def _count(rows: list[OperationEvent]) -> None:
    counters_add([inc for row in rows for inc in counter_increments(row.event_type, row.level, row.context)])
