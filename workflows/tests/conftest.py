"""Fixtures for the engine's tests: agents in given states, definitions, a recording dispatch seam."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from lifecycle.models import Agent
from lifecycle.services import agent_state_report
from workflows import services


@dataclass
class SentTasks:
    """The dispatches the engine wrote to the outbox, as the agent will receive them."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, entries: list[dict[str, Any]], batch: Any = None) -> None:
        for entry in entries:
            message = entry["message"]
            self.calls.append(
                {
                    "dispatch_ref": entry["dispatch_ref"],
                    "agent_id": entry["agent_id"],
                    "task_name": message["task_name"],
                    "parameters": message["payload"]["task_parameters"],
                    "session_id": entry["session_id"],
                    "task_run_id": message["opscore_task_id"],
                }
            )

    def to(self, agent_id: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["agent_id"] == agent_id]

    @property
    def refs(self) -> list[str]:
        return [c["dispatch_ref"] for c in self.calls]


@pytest.fixture(autouse=True)
def _fresh_definition_cache():
    """Rolled-back tests may reuse a definition's id (SQLite does): never serve another test's definition."""
    from workflows.selectors import _DEFINITION_CACHE

    _DEFINITION_CACHE.clear()


@pytest.fixture(autouse=True)
def relay_requests(request, monkeypatch) -> list[list[str]]:
    """Unit tests keep relay messages off the broker (a worker of another test could take them); integration
    tests send them for real."""
    requested: list[list[str]] = []
    if not request.node.get_closest_marker("integration"):
        monkeypatch.setattr("agentkit_bridge.dispatch.relay_request", requested.append)
        monkeypatch.setattr("workflows.engine.loop.relay_request", requested.append)
    return requested


@pytest.fixture
def sent(monkeypatch) -> SentTasks:
    """Record what the engine dispatches (instead of writing the outbox)."""
    recorder = SentTasks()
    monkeypatch.setattr("workflows.dispatching.send_tasks", recorder)
    return recorder


class Clock:
    """Strictly increasing report timestamps."""

    def __init__(self) -> None:
        self.now = timezone.now()

    def tick(self) -> datetime:
        self.now += timedelta(milliseconds=10)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def report(clock):
    """Report a state as the endpoint does, then let the engine apply everything pending (as its loop would)."""

    def send(agent_id: str, state: str, details: dict | None = None, at: datetime | None = None):
        result = agent_state_report(
            agent_id=agent_id, state=state, details=details or {}, reported_at=at or clock.tick()
        )
        services.engine_drain()
        return result

    return send


@pytest.fixture
def make_agent():
    def make(
        agent_id: str,
        capabilities: list[str] | None = None,
        *,
        state: str = "idle",
        known: bool = True,
        last_seen: datetime | None = None,
        last_assigned: datetime | None = None,
        deregistered: bool = False,
        assigned_task: str = "",
    ) -> Agent:
        now = timezone.now()
        return Agent.objects.create(
            agent_id=agent_id,
            name=agent_id,
            capabilities=capabilities or [],
            capabilities_known=known,
            source="webhook" if known else "state_report",
            state=state,
            state_timestamp=now - timedelta(seconds=1) if state else None,
            last_seen_at=last_seen or now,
            last_assigned_at=last_assigned,
            deregistered_at=now if deregistered else None,
            assigned_task=assigned_task,
        )

    return make


def linear(*caps: str, wf_id: str = "wf", **task_policy: Any) -> dict[str, Any]:
    tasks = []
    for index, cap in enumerate(caps):
        task = {"taskId": f"s{index + 1}", "agentCapability": cap, "parameters": {}, **task_policy}
        task["nextTaskId"] = f"s{index + 2}" if index + 1 < len(caps) else None
        tasks.append(task)
    return {"id": wf_id, "version": "1.0", "tasks": tasks}


@pytest.fixture
def define():
    def create(data: dict[str, Any]):
        definition, _ = services.definition_create(data=data)
        return definition

    return create


@pytest.fixture
def start(django_capture_on_commit_callbacks):
    """Start a session as a request would, then let the engine dispatch (as its loop would)."""

    def run(definition, agent=None, payload=None, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            session, _ = services.session_start(
                definition=definition, agent=agent, initial_payload=payload or {}, **kwargs
            )
            services.engine_drain()
        session.refresh_from_db()
        return session

    return run
