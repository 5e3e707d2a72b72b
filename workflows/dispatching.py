"""The engine's one seam towards AgentKit: everything goes through ``agentkit_bridge`` (the only HTTP client)."""

from __future__ import annotations

from typing import Any

from opscore_project.lib.db import WriteBatch


def outbox_entry(
    *, dispatch_ref: str, agent_id: str, task_name: str, parameters: dict[str, Any], session_id: str, task_run_id: str
) -> dict[str, Any]:
    """One dispatch for ``send_tasks``: the contract section 3 ``/run`` body, built by the bridge."""
    from agentkit_bridge.client import build_task_message

    message = build_task_message(
        task_name=task_name, parameters=parameters, session_id=session_id, task_run_id=task_run_id
    )
    return {"dispatch_ref": dispatch_ref, "agent_id": agent_id, "message": message, "session_id": session_id}


def send_tasks(entries: list[dict[str, Any]], batch: WriteBatch | None = None) -> None:
    """Write the dispatches to the bridge's outbox in the caller's transaction (or its ``batch``); the relay sends
    them."""
    from agentkit_bridge.dispatch import dispatches_enqueue

    dispatches_enqueue(entries=entries, batch=batch)
