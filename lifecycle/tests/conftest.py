from __future__ import annotations

import pytest


def report_body(agent_id: str = "agent-1", state: str = "idle", timestamp: str = "2026-11-24T09:00:00+00:00", **extra):
    body = {"agentId": agent_id, "timestamp": timestamp, "state": state, "details": {}}
    body.update(extra)
    return body


@pytest.fixture
def post_state(api_client):
    """POST a state report as the AgentKit SDK does; returns the response."""

    def post(agent_id: str = "agent-1", client=None, **body_fields):
        body = report_body(agent_id, **body_fields)
        return (client or api_client).post(f"/v1/opscore/agent/{agent_id}/state", body, format="json")

    return post
