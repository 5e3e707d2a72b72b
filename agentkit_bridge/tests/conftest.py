from __future__ import annotations

import pytest

AGENTKIT = "http://agentkit.test"


@pytest.fixture
def agentkit_url(settings) -> str:
    settings.AGENTKIT_API_URL = AGENTKIT
    return AGENTKIT


@pytest.fixture
def mocked_agentkit(agentkit_url):
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def listing(*agents: dict) -> dict:
    return {"status": "success", "message": "Agents retrieved successfully.", "data": list(agents)}


def listed_agent(agent_id: str, **overrides) -> dict:
    item = {
        "agentId": agent_id,
        "agentName": f"name-{agent_id}",
        "version": "1.0",
        "capabilities": ["summarise"],
        "contactEndpoint": f"http://{agent_id}.test/",
        "registrationTime": "2026-01-01T10:00:00Z",
        "metadata": {},
    }
    item.update(overrides)
    return item
