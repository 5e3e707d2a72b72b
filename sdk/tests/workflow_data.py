"""Workflow definitions and agents used by the SDK's workflow tests."""

from __future__ import annotations

import copy
from typing import Any

DEFINITION: dict[str, Any] = {
    "id": "sdk_test_workflow",
    "name": "SDK test workflow",
    "description": "Summarise, then translate.",
    "version": "1.0",
    "tasks": [
        {
            "taskId": "step_1",
            "name": "Summarise",
            "agentCapability": "summarise",
            "parameters": {"length": "short"},
            "nextTaskId": "step_2",
        },
        {
            "taskId": "step_2",
            "name": "Translate",
            "agentCapability": "translate",
            "parameters": {"language": "fr"},
            "nextTaskId": None,
        },
    ],
}


def definition(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(DEFINITION)
    body.update(changes)
    return body


def make_agents() -> None:
    """Two registered agents with known capabilities, idle, so tasks can be routed to them."""
    from datetime import UTC, datetime

    from django.utils import timezone

    from lifecycle.models import Agent
    from lifecycle.services import agent_state_report

    for agent_id, capability in (("sdk-summariser", "summarise"), ("sdk-translator", "translate")):
        Agent.objects.create(
            agent_id=agent_id,
            name=agent_id,
            capabilities=[capability],
            capabilities_known=True,
            contact_endpoint="http://127.0.0.1:9/",
            registered_at=timezone.now(),
        )
        agent_state_report(agent_id=agent_id, state="idle", details={}, reported_at=datetime.now(UTC))
