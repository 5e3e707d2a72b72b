"""The dispatch primitive the workflow engine calls to send a task to an agent through AgentKit."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def enqueue_dispatch(*, dispatch_ref: str, agent_id: str, message: dict[str, Any]) -> None:
    """Queue ``POST /v1/agents/{agent_id}/run`` with ``message`` (build it with
    ``agentkit_bridge.client.build_task_message``) once the caller's transaction commits, so the worker sees
    the committed rows. The outcome arrives later through ``agentkit_bridge.hooks`` listeners.

    ``dispatch_ref`` identifies the dispatch (the engine's task run id, at most 64 characters); queueing the same
    ref again after it was accepted does not POST again.
    """
    from agentkit_bridge.tasks import dispatch_to_agentkit

    transaction.on_commit(lambda: dispatch_to_agentkit.delay(dispatch_ref, agent_id, message))
