"""Operator controls on agents and the circuit breaker: drain, quarantine, capabilities (docs/operations.md).

Each change is a compare-and-swap on the agent row plus one operation-log event in the same transaction. The
breaker's automatic side (``agents_release``) is called by the workflow engine once per batch: one statement frees
the agents whose runs ended and records those runs' outcomes, whatever the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from lifecycle.hooks import notify_agent_available
from lifecycle.models import AGENTKIT_CAPABILITY_SOURCES, Agent, BreakerState, CapabilitiesSource
from opscore_project.errors import NotFound, ValidationFailed
from opscore_project.lib.db import WriteBatch, fetchall_server_bound
from opscore_project.observability import events
from opscore_project.observability.oplog import log_operation

MAX_CAPABILITIES = 200
MAX_CAPABILITY_LENGTH = 255
MAX_QUARANTINE_SECONDS = 366 * 24 * 3600


def _agent(agent_id: str) -> Agent:
    agent = Agent.objects.filter(agent_id=agent_id).first()
    if agent is None:
        raise NotFound(f"Agent {agent_id!r} is not known to Ops-Core.")
    return agent


def _available_after_commit(agent_id: str) -> None:
    transaction.on_commit(lambda: notify_agent_available(agent_id))


# --- drain ------------------------------------------------------------------------------------------------------


def agent_drain(*, agent_id: str, now: datetime | None = None) -> Agent:
    """Take an agent out of rotation: it gets no new task; a task it holds finishes normally. Idempotent (a
    drained agent stays drained since its first drain, and no second event is written). Raises NotFound."""
    now = now or timezone.now()
    with transaction.atomic():
        agent = _agent(agent_id)
        if Agent.objects.filter(pk=agent.pk, drained_at__isnull=True).update(drained_at=now, updated_at=now):
            busy = bool(Agent.objects.filter(pk=agent.pk).values_list("assigned_task", flat=True).first())
            log_operation(
                events.AGENT_DRAINED,
                {"busy": busy},
                agent_id=agent_id,
                message=f"Agent {agent_id} drained: no new tasks"
                + ("; its current task finishes" if busy else " (no task in flight)"),
            )
        agent.refresh_from_db()
    return agent


def agent_undrain(*, agent_id: str, now: datetime | None = None) -> Agent:
    """Return a drained agent to rotation. Idempotent. Raises NotFound."""
    now = now or timezone.now()
    with transaction.atomic():
        agent = _agent(agent_id)
        if Agent.objects.filter(pk=agent.pk, drained_at__isnull=False).update(drained_at=None, updated_at=now):
            log_operation(events.AGENT_UNDRAINED, {}, agent_id=agent_id, message=f"Agent {agent_id} back in rotation")
            _available_after_commit(agent_id)
        agent.refresh_from_db()
    return agent


# --- quarantine (manual) ------------------------------------------------------------------------------------------


def agent_quarantine(
    *, agent_id: str, seconds: int | None = None, reason: str = "", now: datetime | None = None
) -> Agent:
    """Quarantine an agent by hand: it gets no new task (a task it holds finishes). With ``seconds`` the quarantine
    ends like an automatic one (one trial task after the cool-down); without, it lasts until released. Quarantining
    a quarantined agent replaces its cool-down. Raises NotFound, ValidationFailed."""
    if seconds is not None and not 1 <= seconds <= MAX_QUARANTINE_SECONDS:
        raise ValidationFailed({"seconds": [f"Between 1 and {MAX_QUARANTINE_SECONDS}."]})
    now = now or timezone.now()
    reason = reason.strip() or "Quarantined by an operator"
    until = now + timedelta(seconds=seconds) if seconds else None
    with transaction.atomic():
        agent = _agent(agent_id)
        Agent.objects.filter(pk=agent.pk).update(
            breaker_state=BreakerState.OPEN,
            quarantined_until=until,
            quarantine_reason=reason,
            breaker_cooldown_seconds=seconds or 0,
            breaker_changed_at=now,
            updated_at=now,
        )
        log_operation(
            events.AGENT_QUARANTINED,
            {
                "manual": True,
                "reason": reason,
                "until": until.isoformat() if until else None,
                "cooldownSeconds": seconds,
            },
            level="warning",
            agent_id=agent_id,
            message=f"Agent {agent_id} quarantined by an operator "
            + (f"for {seconds}s" if seconds else "until released")
            + f": {reason}",
        )
        agent.refresh_from_db()
    return agent


def agent_quarantine_release(*, agent_id: str, now: datetime | None = None) -> Agent:
    """End an agent's quarantine (its breaker closes and its failure count restarts). Idempotent. Raises NotFound."""
    now = now or timezone.now()
    with transaction.atomic():
        agent = _agent(agent_id)
        released = (
            Agent.objects.filter(pk=agent.pk)
            .exclude(breaker_state=BreakerState.CLOSED)
            .update(
                breaker_state=BreakerState.CLOSED,
                quarantined_until=None,
                quarantine_reason="",
                breaker_cooldown_seconds=0,
                consecutive_failures=0,
                breaker_changed_at=now,
                updated_at=now,
            )
        )
        if released:
            log_operation(
                events.AGENT_QUARANTINE_RELEASED,
                {"manual": True, "from": agent.breaker_state},
                agent_id=agent_id,
                message=f"Agent {agent_id} released from quarantine by an operator",
            )
            _available_after_commit(agent_id)
        agent.refresh_from_db()
    return agent


# --- capabilities -----------------------------------------------------------------------------------------------


def clean_capabilities(value: Any, field: str = "capabilities") -> list[str]:
    """A list of capability names, stripped and without duplicates (order kept). Raises ValidationFailed."""
    if not isinstance(value, list):
        raise ValidationFailed({field: ["A list of strings."]})
    if len(value) > MAX_CAPABILITIES:
        raise ValidationFailed({field: [f"At most {MAX_CAPABILITIES} capabilities."]})
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValidationFailed({field: ["Each capability is a non-empty string."]})
        if len(item.strip()) > MAX_CAPABILITY_LENGTH:
            raise ValidationFailed({field: [f"Each capability has at most {MAX_CAPABILITY_LENGTH} characters."]})
        if item.strip() not in names:
            names.append(item.strip())
    return names


def agent_capabilities_set(*, agent_id: str, capabilities: list[str], now: datetime | None = None) -> Agent:
    """Set an agent's capabilities by hand: they count as known (source ``operator``), so capability routing uses
    the agent. A later webhook or poll bringing a non-empty list replaces them. Raises NotFound, ValidationFailed."""
    names = clean_capabilities(capabilities)
    now = now or timezone.now()
    with transaction.atomic():
        agent = Agent.objects.select_for_update().filter(agent_id=agent_id).first()
        if agent is None:
            raise NotFound(f"Agent {agent_id!r} is not known to Ops-Core.")
        previous = {"capabilities": agent.capabilities if agent.capabilities_known else None}
        previous["source"] = agent.capabilities_source
        Agent.objects.filter(pk=agent.pk).update(
            capabilities=names,
            capabilities_known=True,
            capabilities_source=CapabilitiesSource.OPERATOR,
            updated_at=now,
        )
        log_operation(
            events.AGENT_CAPABILITIES_SET,
            {"source": CapabilitiesSource.OPERATOR, "capabilities": names, "previous": previous},
            agent_id=agent_id,
            message=f"Capabilities of {agent_id} set by an operator: {', '.join(names) or '(none)'}",
        )
        agent.refresh_from_db()
    return agent


def replaces_capabilities(current_source: str, capabilities: list[str]) -> bool:
    """Whether a registration from AgentKit (webhook or poll) replaces what an operator or a report set: only when it
    brings a non-empty list (the real AgentKit's may be empty, contract 1b)."""
    return bool(capabilities) or current_source in AGENTKIT_CAPABILITY_SOURCES or not current_source


# --- the circuit breaker (automatic) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcomes:
    """What one engine batch saw of an agent's task runs, in order: whether any succeeded, the failures after the
    last success (all of them if none did), and the deliveries it never started."""

    success: bool = False
    failures: int = 0
    delivery_failures: int = 0

    @classmethod
    def of(cls, results: list[bool], delivery_failures: int = 0) -> Outcomes:
        last_success = max((i for i, ok in enumerate(results) if ok), default=-1)
        return cls(last_success >= 0, sum(1 for ok in results[last_success + 1 :] if not ok), delivery_failures)


@dataclass(frozen=True)
class BreakerChange:
    agent_id: str
    move: str  # "open" (quarantined), "reopen" (trial failed), "close" (trial succeeded)
    consecutive_failures: int
    cooldown_seconds: int
    until: datetime | None


def _cooldowns() -> tuple[int, int, int]:
    cap = settings.OPSCORE_QUARANTINE_MAX_COOLDOWN_SECONDS
    return settings.OPSCORE_QUARANTINE_AFTER_FAILURES, min(settings.OPSCORE_QUARANTINE_COOLDOWN_SECONDS, cap), cap


def breaker_move(state: str, streak: int, outcome: Outcomes, threshold: int) -> str:
    """The breaker transition for one agent's batch of outcomes ('' = none). Twin of the CASE in _RELEASE_SQL."""
    if state == BreakerState.HALF_OPEN and outcome.failures > 0:
        return "reopen"
    if state == BreakerState.HALF_OPEN and outcome.success:
        return "close"
    if state == BreakerState.CLOSED and outcome.failures > 0 and threshold > 0 and streak >= threshold:
        return "open"
    return ""


# The engine's per-batch write to agents, one statement whatever the batch size: it frees the agents whose runs left
# flight (only if they still hold one of those runs: the same compare-and-swap as a plain release) and records the
# outcomes of the runs that ended. The rows are locked first (FOR UPDATE in the CTE), so the breaker's move is
# decided on their latest version even if an operator changed one meanwhile, and RETURNING says which move each made.
_RELEASE_SQL = """
WITH outcome AS (
    SELECT * FROM unnest(%(pks)s::bigint[], %(success)s::boolean[], %(failures)s::int[], %(delivery)s::int[])
        AS o (pk, success, failures, delivery)
), locked AS (
    SELECT agent.id, agent.breaker_state, agent.breaker_cooldown_seconds,
           CASE WHEN outcome.success THEN outcome.failures
                ELSE agent.consecutive_failures + outcome.failures END AS streak
    FROM lifecycle_agent AS agent JOIN outcome ON outcome.pk = agent.id
    WHERE outcome.success OR outcome.failures > 0 OR outcome.delivery > 0 OR agent.assigned_task = ANY(%(refs)s::text[])
    ORDER BY agent.id
    FOR UPDATE OF agent
), decided AS (
    SELECT locked.id, locked.streak, locked.breaker_cooldown_seconds, outcome.delivery,
           CASE WHEN locked.breaker_state = 'half_open' AND outcome.failures > 0 THEN 'reopen'
                WHEN locked.breaker_state = 'half_open' AND outcome.success THEN 'close'
                WHEN locked.breaker_state = 'closed' AND outcome.failures > 0 AND %(threshold)s > 0
                     AND locked.streak >= %(threshold)s THEN 'open'
                ELSE '' END AS move
    FROM locked JOIN outcome ON outcome.pk = locked.id
), cooled AS (
    SELECT decided.*,
           CASE decided.move WHEN 'open' THEN %(base)s
                WHEN 'reopen' THEN LEAST(GREATEST(decided.breaker_cooldown_seconds, %(base)s) * 2, %(cap)s)
                WHEN 'close' THEN 0 ELSE decided.breaker_cooldown_seconds END AS cooldown
    FROM decided
)
UPDATE lifecycle_agent AS agent SET
    assigned_task = CASE WHEN agent.assigned_task = ANY(%(refs)s::text[]) THEN '' ELSE agent.assigned_task END,
    consecutive_failures = cooled.streak,
    delivery_failures = agent.delivery_failures + cooled.delivery,
    last_delivery_failure_at = CASE WHEN cooled.delivery > 0 THEN %(now)s ELSE agent.last_delivery_failure_at END,
    breaker_state = CASE cooled.move WHEN '' THEN agent.breaker_state WHEN 'close' THEN 'closed' ELSE 'open' END,
    breaker_cooldown_seconds = cooled.cooldown,
    quarantined_until = CASE cooled.move WHEN '' THEN agent.quarantined_until WHEN 'close' THEN NULL
                        ELSE %(now)s + make_interval(secs => cooled.cooldown) END,
    quarantine_reason = CASE cooled.move WHEN '' THEN agent.quarantine_reason WHEN 'close' THEN ''
                        WHEN 'open' THEN %(open_reason)s ELSE %(reopen_reason)s END,
    breaker_changed_at = CASE cooled.move WHEN '' THEN agent.breaker_changed_at ELSE %(now)s END
FROM cooled
WHERE agent.id = cooled.id
RETURNING agent.agent_id, cooled.move, agent.consecutive_failures, agent.breaker_cooldown_seconds,
          agent.quarantined_until
"""
_OPEN_REASON = "Automatic: the last task outcomes in a row were failures"
_REOPEN_REASON = "Automatic: the trial task after the cool-down failed"


def agents_release(
    *, released: list[tuple[int, str]], outcomes: dict[int, Outcomes], now: datetime, batch: WriteBatch | None = None
) -> list[BreakerChange]:
    """The engine's per-batch write to agents: free those holding a run that left flight (``released``: (agent pk,
    run ref) pairs; an agent is freed only if it still holds one of those refs) and record the task outcomes of the
    batch (agent pk → its outcomes): failure streaks, delivery failures and the breaker moves they cause. One
    statement on Postgres (the last of ``batch`` if one is given). Returns the moves (the caller logs them with its
    batch's events)."""
    if not released and not outcomes:
        return []
    threshold, base, cap = _cooldowns()
    refs = sorted({ref for _, ref in released})
    if settings.IS_POSTGRES:
        outcomes = {**{pk: Outcomes() for pk, _ in released}, **outcomes}
        pks = sorted(outcomes)
        params = {
            "refs": refs,
            "pks": pks,
            "success": [outcomes[pk].success for pk in pks],
            "failures": [outcomes[pk].failures for pk in pks],
            "delivery": [outcomes[pk].delivery_failures for pk in pks],
            "threshold": threshold,
            "base": base,
            "cap": cap,
            "now": now,
            "open_reason": _OPEN_REASON,
            "reopen_reason": _REOPEN_REASON,
        }
        rows = (
            batch.execute(returning=(_RELEASE_SQL, params))
            if batch is not None
            else fetchall_server_bound(_RELEASE_SQL, params)
        )
        return [BreakerChange(*row) for row in rows if row[1]]
    if released:
        Agent.objects.filter(pk__in={pk for pk, _ in released}, assigned_task__in=refs).update(assigned_task="")
    return [
        change for pk in sorted(outcomes) if (change := _record_generic(pk, outcomes[pk], now, threshold, base, cap))
    ]


def _record_generic(
    pk: int, outcome: Outcomes, now: datetime, threshold: int, base: int, cap: int
) -> BreakerChange | None:
    """The ORM twin of _RELEASE_SQL's outcome part for one agent (embedded SQLite mode)."""
    agent = Agent.objects.select_for_update().filter(pk=pk).first()
    if agent is None:
        return None
    streak = outcome.failures if outcome.success else agent.consecutive_failures + outcome.failures
    move = breaker_move(agent.breaker_state, streak, outcome, threshold)
    fields: dict[str, Any] = {"consecutive_failures": streak}
    if outcome.delivery_failures:
        fields["delivery_failures"] = F("delivery_failures") + outcome.delivery_failures
        fields["last_delivery_failure_at"] = now
    cooldown = agent.breaker_cooldown_seconds
    if move:
        cooldown = {"open": base, "reopen": min(max(cooldown, base) * 2, cap), "close": 0}[move]
        fields.update(
            breaker_state=BreakerState.CLOSED if move == "close" else BreakerState.OPEN,
            breaker_cooldown_seconds=cooldown,
            quarantined_until=None if move == "close" else now + timedelta(seconds=cooldown),
            quarantine_reason={"open": _OPEN_REASON, "reopen": _REOPEN_REASON, "close": ""}[move],
            breaker_changed_at=now,
        )
    Agent.objects.filter(pk=pk).update(**fields)
    if not move:
        return None
    return BreakerChange(agent.agent_id, move, streak, cooldown, fields["quarantined_until"])
