"""What each condition finds right now: reads only (live state and windows of the operation log).

State conditions answer "which subjects are in trouble now?"; an alert fires for each subject found and resolves
when it is no longer found. ``session_failed`` and ``agent_quarantined`` are transitions instead: they are read
from the operation log incrementally by ``services.alerts_evaluate`` (``event_effects`` below).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Min
from django.db.models.functions import Coalesce

from agentkit_bridge.models import SyncOutcome, SyncRun
from lifecycle.models import Agent, AgentState
from opscore_project.alerts.models import AlertRule, Condition
from opscore_project.observability import events
from opscore_project.observability.models import OperationEvent
from workflows.models import TaskRun

# Event types added by the agents' quarantine feature; matched by name so this module needs nothing from it.
AGENT_QUARANTINED = "agent.quarantined"
AGENT_QUARANTINE_RELEASED = "agent.quarantine_released"
# Task-run status of a step waiting for a person (the human-in-the-loop feature); none exist until it lands.
WAITING_FOR_INPUT = "waiting_for_input"

EVENT_CONDITIONS = (Condition.SESSION_FAILED, Condition.AGENT_QUARANTINED)
# The events the evaluator reads from the log, per condition.
WATCHED_EVENTS = (events.SESSION_FAILED, events.SESSION_COMPLETED, AGENT_QUARANTINED, AGENT_QUARANTINE_RELEASED)

DEFAULT_DELIVERY_WINDOW_SECONDS = 600
DEFAULT_SYNC_FAILURES = 3


@dataclass(frozen=True)
class Finding:
    """One subject for which a condition holds."""

    key: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventEffect:
    """What one operation-log event means for a rule: fire or resolve the alert of ``key``."""

    fire: bool
    finding: Finding


def _seconds(value: datetime, now: datetime) -> int:
    return max(0, int((now - value).total_seconds()))


def agent_error(rule: AlertRule, now: datetime) -> list[Finding]:
    agents = Agent.objects.filter(state=AgentState.ERROR, deregistered_at__isnull=True).values_list(
        "agent_id", "state_timestamp", "state_details"
    )
    return [
        Finding(
            key=agent_id,
            summary=f"Agent {agent_id} is in error",
            details={"agentId": agent_id, "since": since.isoformat() if since else None, "details": details},
        )
        for agent_id, since, details in agents
    ]


def agent_stale(rule: AlertRule, now: datetime) -> list[Finding]:
    seconds = rule.threshold or settings.OPSCORE_AGENT_STALE_SECONDS
    agents = (
        Agent.objects.filter(deregistered_at__isnull=True)
        .annotate(seen=Coalesce("last_seen_at", "created_at"))
        .filter(seen__lt=now - timedelta(seconds=seconds))
        .values_list("agent_id", "seen")
    )
    return [
        Finding(
            key=agent_id,
            summary=f"Agent {agent_id} has been silent for over {seconds:g} s (last seen {seen:%Y-%m-%d %H:%M:%S} UTC)",
            details={"agentId": agent_id, "lastSeenAt": seen.isoformat(), "thresholdSeconds": seconds},
        )
        for agent_id, seen in agents
    ]


def _waiting_runs(rule: AlertRule, now: datetime, status: str, label: str) -> list[Finding]:
    runs = TaskRun.objects.filter(status=status, ready_at__lt=now - timedelta(seconds=rule.threshold or 0))
    if rule.workflow_id:
        runs = runs.filter(session__workflow_id=rule.workflow_id)
    groups = (
        runs.values(workflow=F("session__workflow_id"))
        .annotate(count=Count("id"), oldest=Min("ready_at"))
        .order_by("workflow")
    )
    return [
        Finding(
            key=group["workflow"],
            summary=f"{group['count']} task(s) of {group['workflow']} {label} for over {rule.threshold:g} s "
            f"(oldest {_seconds(group['oldest'], now)} s)",
            details={
                "workflowId": group["workflow"],
                "tasks": group["count"],
                "oldestSeconds": _seconds(group["oldest"], now),
                "thresholdSeconds": rule.threshold,
            },
        )
        for group in groups
    ]


def task_queue_wait(rule: AlertRule, now: datetime) -> list[Finding]:
    return _waiting_runs(rule, now, "pending", "waiting in the queue")


def input_inbox_age(rule: AlertRule, now: datetime) -> list[Finding]:
    return _waiting_runs(rule, now, WAITING_FOR_INPUT, "waiting for human input")


def delivery_failures(rule: AlertRule, now: datetime) -> list[Finding]:
    """Agents with a delivery failure (a task AgentKit accepted and the agent never started) in the window:
    a ``task.delivery_failed`` event, or a failure counted on the agent (``Agent.delivery_failures``)."""
    seconds = rule.threshold or DEFAULT_DELIVERY_WINDOW_SECONDS
    since = now - timedelta(seconds=seconds)
    counts: dict[str, int] = {}
    logged = (
        OperationEvent.objects.filter(event_type=events.TASK_DELIVERY_FAILED, created_at__gte=since)
        .exclude(agent_id="")
        .values("agent_id")
        .annotate(n=Count("id"))
    )
    for row in logged:
        counts[row["agent_id"]] = row["n"]
    for agent_id in Agent.objects.filter(last_delivery_failure_at__gte=since).values_list("agent_id", flat=True):
        counts.setdefault(agent_id, 1)
    totals = dict(Agent.objects.filter(agent_id__in=counts).values_list("agent_id", "delivery_failures"))
    return [
        Finding(
            key=agent_id,
            summary=f"Agent {agent_id}: {count} task delivery failure(s) in the last {seconds:g} s",
            details={"agentId": agent_id, "recent": count, "total": totals.get(agent_id, 0), "windowSeconds": seconds},
        )
        for agent_id, count in sorted(counts.items())
    ]


def sync_failures(rule: AlertRule, now: datetime) -> list[Finding]:
    needed = int(rule.threshold or DEFAULT_SYNC_FAILURES)
    latest = list(
        SyncRun.objects.exclude(outcome=SyncOutcome.SKIPPED_LOCKED)
        .order_by("-started_at", "-id")
        .values_list("outcome", "error", "started_at")[:needed]
    )
    if len(latest) < needed or any(outcome != SyncOutcome.FAILED for outcome, _, _ in latest):
        return []
    return [
        Finding(
            key="agentkit",
            summary=f"AgentKit polling sync failed {needed} times in a row: {latest[0][1][:200]}",
            details={"failures": needed, "lastError": latest[0][1][:300], "lastAt": latest[0][2].isoformat()},
        )
    ]


STATE_CONDITIONS = {
    Condition.AGENT_ERROR: agent_error,
    Condition.AGENT_STALE: agent_stale,
    Condition.TASK_QUEUE_WAIT: task_queue_wait,
    Condition.INPUT_INBOX_AGE: input_inbox_age,
    Condition.DELIVERY_FAILURES: delivery_failures,
    Condition.SYNC_FAILURES: sync_failures,
}


def findings(rule: AlertRule, now: datetime) -> list[Finding]:
    """Subjects for which the state condition of ``rule`` holds at ``now``."""
    return STATE_CONDITIONS[rule.condition](rule, now)


def event_effect(rule: AlertRule, event: OperationEvent) -> EventEffect | None:
    """What ``event`` means for an event condition of ``rule`` (None: nothing)."""
    if rule.condition == Condition.SESSION_FAILED:
        workflow = str((event.context or {}).get("workflowId") or "")
        if event.event_type not in (events.SESSION_FAILED, events.SESSION_COMPLETED) or not workflow:
            return None
        if rule.workflow_id and workflow != rule.workflow_id:
            return None
        failed = event.event_type == events.SESSION_FAILED
        summary = (
            f"Session {event.session_id} of {workflow} failed: {event.message[:200]}"
            if failed
            else f"A session of {workflow} completed again"
        )
        details = {"workflowId": workflow, "sessionId": event.session_id, "eventId": event.pk}
        return EventEffect(fire=failed, finding=Finding(key=workflow, summary=summary, details=details))
    if rule.condition == Condition.AGENT_QUARANTINED:
        if event.event_type not in (AGENT_QUARANTINED, AGENT_QUARANTINE_RELEASED) or not event.agent_id:
            return None
        fired = event.event_type == AGENT_QUARANTINED
        summary = f"Agent {event.agent_id} " + ("quarantined" if fired else "released from quarantine")
        if fired and event.message:
            summary += f": {event.message[:200]}"
        details = {"agentId": event.agent_id, "eventId": event.pk, "context": event.context}
        return EventEffect(fire=fired, finding=Finding(key=event.agent_id, summary=summary, details=details))
    return None
