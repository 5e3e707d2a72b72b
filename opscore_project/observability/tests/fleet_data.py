"""A small fleet with known history, for the overview/agent/workflow selector tests and the browser tests.

Every moment is relative to ``now``; the expected aggregates are worked out by hand in test_fleet_selectors.py.
With ``now`` = 12:00:30 and the 1 h window (1-minute buckets), the charts span 11:01:00 – 12:01:00.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lifecycle.models import Agent, AgentStateRecord
from workflows.models import TaskRun, WorkflowDefinition, WorkflowSession
from workflows.services import definition_create

REPORT_SPEC = {
    "id": "wf-report",
    "version": "1",
    "name": "Daily report",
    "tasks": [
        {"taskId": "fetch", "agentCapability": "fetch", "nextTaskId": "summarise"},
        {"taskId": "summarise", "agentCapability": "summarise"},
        {"taskId": "translate", "agentCapability": "translate", "dependsOn": ["fetch"], "fallbackTaskId": "lite"},
        {"taskId": "lite", "agentCapability": "translate"},
        {"taskId": "publish", "agentCapability": "publish", "dependsOn": ["summarise", "translate"]},
    ],
}
REPORT_SPEC_V2 = {**REPORT_SPEC, "version": "2", "tasks": REPORT_SPEC["tasks"][:2]}
OTHER_SPEC = {"id": "wf-other", "version": "1", "tasks": [{"taskId": "step", "agentCapability": "fetch"}]}


@dataclass
class Fleet:
    now: datetime
    agents: dict[str, Agent] = field(default_factory=dict)
    sessions: dict[str, WorkflowSession] = field(default_factory=dict)
    runs: dict[str, TaskRun] = field(default_factory=dict)
    report: WorkflowDefinition | None = None


def at(now: datetime, hh_mm_ss: str) -> datetime:
    """The moment that is to ``now`` what ``hh_mm_ss`` ("11:10:02.5") is to 12:00:30: with ``now`` at 12:00:30
    it is that clock time; with any other ``now`` the same history happens as long before it."""
    hours, minutes, seconds = hh_mm_ss.split(":")
    offset = timedelta(hours=int(hours) - 12, minutes=int(minutes), seconds=float(seconds) - 30)
    return now + offset


def seed_fleet(now: datetime) -> Fleet:
    """Agents a (idle), b (error), c (active but silent for 20 min: stale), d (deregistered); seven sessions."""
    fleet = Fleet(now=now)
    for agent_id, state, seen_ago, deregistered in (
        ("agent-a", "idle", 5, False),
        ("agent-b", "error", 30, False),
        ("agent-c", "active", 1200, False),
        ("agent-d", "idle", 5, True),
    ):
        fleet.agents[agent_id] = Agent.objects.create(
            agent_id=agent_id,
            source="webhook",
            capabilities=["fetch", "summarise"],
            capabilities_known=True,
            state=state,
            last_seen_at=now - timedelta(seconds=seen_ago),
            registered_at=now - timedelta(days=1),
            created_at=now - timedelta(days=1),
            deregistered_at=now - timedelta(hours=2) if deregistered else None,
        )
    fleet.report, _ = definition_create(data=REPORT_SPEC, now=now - timedelta(days=2))
    definition_create(data=REPORT_SPEC_V2, now=now - timedelta(days=1))
    other, _ = definition_create(data=OTHER_SPEC, now=now - timedelta(days=2))
    v1 = fleet.report

    def session(name, definition, created, ended, status, agent=None):
        fleet.sessions[name] = WorkflowSession.objects.create(
            definition=definition,
            workflow_id=definition.workflow_id,
            status=status,
            agent=fleet.agents[agent] if agent else None,
            created_at=at(now, created),
            started_at=at(now, created),
            ended_at=at(now, ended) if ended else None,
            error="Task fetch failed" if status == "failed" else "",
        )

    session("S1", v1, "11:10:00", "11:10:40", "completed", agent="agent-a")
    session("S2", v1, "11:10:20", "11:11:50", "failed")
    session("S3", v1, "11:30:00", "11:30:10", "completed")
    session("S4", other, "11:30:30", "11:31:00", "failed")
    session("S5", other, "11:59:00", None, "running")
    session("S6", v1, "11:59:30", None, "pending")
    session("S7", v1, "10:00:00", "10:30:00", "failed")

    def run(name, sess, task, agent, status, ready, dispatched=None, started=None, ended=None, **extra):
        attempt = extra.pop("attempt", 1)
        fleet.runs[name] = TaskRun.objects.create(
            session=fleet.sessions[sess],
            task_id=task,
            attempt=attempt,
            try_number=extra.pop("try_number", 1),
            status=status,
            capability="fetch",
            agent=fleet.agents[agent] if agent else None,
            created_at=at(now, ready),
            ready_at=at(now, ready),
            dispatched_at=at(now, dispatched) if dispatched else None,
            accepted_at=at(now, extra.pop("accepted")) if "accepted" in extra else None,
            started_at=at(now, started) if started else None,
            ended_at=at(now, ended) if ended else None,
            error=extra.pop("error", ""),
        )

    run("r1", "S1", "fetch", "agent-a", "completed", "11:10:00", "11:10:02", "11:10:02.5", "11:10:12")
    run("r2", "S1", "summarise", "agent-a", "completed", "11:10:12", "11:10:13", "11:10:13.2", "11:10:40")
    run("r3", "S2", "fetch", "agent-b", "failed", "11:10:20", "11:10:24", None, "11:10:35",
        accepted="11:10:25", error="Source unreachable")  # fmt: skip
    run("r4", "S2", "fetch", "agent-b", "timed_out", "11:10:40", "11:10:41", "11:10:41.1", "11:11:50",
        attempt=2, try_number=2, error="No report within 60 s")  # fmt: skip
    run("r5", "S3", "fetch", "agent-a", "completed", "11:30:00", "11:30:00.5", "11:30:01", "11:30:10")
    run("r6", "S4", "step", "agent-c", "failed", "11:30:30", "11:30:33", "11:30:34", "11:31:00", error="Bad input")
    run("r7", "S5", "step", "agent-c", "running", "11:59:00", "11:59:10", "11:59:12")
    run("r8", "S6", "fetch", None, "pending", "11:59:30")
    return fleet


def seed_states(agent: Agent, now: datetime) -> None:
    """agent's reports: idle before the window, a short active spell, a 20-minute silence, error, idle, silence."""
    for moment, state in (
        ("10:55:00", "idle"),
        ("11:10:00", "active"),
        ("11:10:05", "active"),
        ("11:10:40", "idle"),
        ("11:20:00", "idle"),
        ("11:40:00", "error"),
        ("11:45:00", "idle"),
    ):
        AgentStateRecord.objects.create(agent=agent, state=state, reported_at=at(now, moment), received_at=now)
