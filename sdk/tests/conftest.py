"""Fixtures for SDK tests: a live Ops-Core (pytest-django's ``live_server`` on the real database) and clients."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opscore_sdk import OpsCoreClient

WORKFLOW_API = importlib.util.find_spec("workflows.apis") is not None
EVENTS_API = importlib.util.find_spec("opscore_project.observability.apis") is not None
BRIDGE_API = importlib.util.find_spec("agentkit_bridge.apis") is not None

needs_workflow_api = pytest.mark.skipif(not WORKFLOW_API, reason="workflow endpoints are not on this branch yet")
needs_events_api = pytest.mark.skipif(not EVENTS_API, reason="event endpoints are not on this branch yet")
needs_bridge = pytest.mark.skipif(not BRIDGE_API, reason="AgentKit webhook and dispatch are not on this branch yet")


@pytest.fixture
def base_url(live_server) -> str:
    return live_server.url


@pytest.fixture
def client(base_url, operator_token) -> Iterator[OpsCoreClient]:
    """The SDK as operators use it: with an operator-scoped token (the agents' shared key cannot run workflows)."""
    with OpsCoreClient(base_url, operator_token, timeout=10, retries=0) as c:
        yield c


@pytest.fixture
def report():
    """Store a state report through the service layer (for setting up data)."""
    from lifecycle.services import agent_state_report

    def _report(agent_id: str, state: str = "idle", details: dict | None = None, at: datetime | None = None):
        return agent_state_report(
            agent_id=agent_id, state=state, details=details or {}, reported_at=at or datetime.now(UTC)
        )

    return _report


@pytest.fixture
def cli_env(monkeypatch, base_url, operator_token):
    """The CLI reads its URL and key (an operator token) from the environment, as a user's shell provides them."""
    monkeypatch.setenv("OPSCORE_API_URL", base_url)
    monkeypatch.setenv("OPSCORE_API_KEY", operator_token)
    monkeypatch.setenv("NO_COLOR", "1")
    return base_url
