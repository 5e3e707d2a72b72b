"""The engine's one seam towards AgentKit: everything goes through ``agentkit_bridge`` (the only HTTP client).

Tests replace ``send_task`` to assert on what the scheduler dispatched without a bridge or a broker.
"""

from __future__ import annotations

from typing import Any


def build_message(*, task_name: str, parameters: dict[str, Any], session_id: str, task_run_id: str) -> dict:
    """The contract section 3 ``/run`` body, built by the bridge."""
    from agentkit_bridge.client import build_task_message

    return build_task_message(
        task_name=task_name, parameters=parameters, session_id=session_id, task_run_id=task_run_id
    )


def send_task(
    *, dispatch_ref: str, agent_id: str, task_name: str, parameters: dict, session_id: str, task_run_id: str
) -> None:
    """Hand one task run to the bridge; the bridge enqueues its Celery task when the transaction commits."""
    from agentkit_bridge.dispatch import enqueue_dispatch

    message = build_message(task_name=task_name, parameters=parameters, session_id=session_id, task_run_id=task_run_id)
    enqueue_dispatch(dispatch_ref=dispatch_ref, agent_id=agent_id, message=message)
