"""The signed REGISTER / DEREGISTER webhooks the mock sends to Ops-Core."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import requests

from mock_agentkit.testing import AgentSpec, running_mock_agentkit

from .conftest import API_KEY, WEBHOOK_SECRET


def expected_signature(timestamp: str, raw: bytes) -> str:
    return hmac.new(WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()


def test_register_webhook_is_signed_compact_and_has_no_registration_time(opscore):
    spec = AgentSpec("writer", ["summarise", "translate"], version="3.1", metadata={"team": "docs"})
    with running_mock_agentkit(
        opscore_url=opscore.url, api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, agents=[spec]
    ) as mock:
        opscore.wait_until(lambda: opscore.webhooks(), what="the webhook")
        agent = mock.agent("writer")

    [webhook] = opscore.webhooks()
    assert webhook.path == "/v1/opscore/internal/agent/notify"
    assert webhook.headers["Content-Type"] == "application/json"
    timestamp = webhook.headers["X-AgentKit-Timestamp"]
    assert timestamp.isdigit()
    assert abs(int(timestamp) - time.time()) < 30
    assert webhook.headers["X-AgentKit-Signature"] == expected_signature(timestamp, webhook.raw)
    assert webhook.raw == json.dumps(webhook.body, separators=(",", ":")).encode()
    assert webhook.body == {
        "event_type": "REGISTER",
        "agent_details": {
            "agentId": agent.agent_id,
            "agentName": "writer",
            "version": "3.1",
            "capabilities": ["summarise", "translate"],
            "contactEndpoint": agent.contact_endpoint,
            "metadata": {"team": "docs"},
        },
    }


def test_webhook_arrives_after_the_agents_first_state_report(opscore):
    with running_mock_agentkit(
        opscore_url=opscore.url, api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, agents=3
    ) as mock:
        opscore.wait_until(lambda: len(opscore.webhooks()) == 3, what="3 webhooks")
        ids = [a.agent_id for a in mock.agents]

    for agent_id in ids:
        first_report = opscore.reports(agent_id)[0]
        [webhook] = [w for w in opscore.webhooks() if w.body["agent_details"]["agentId"] == agent_id]
        assert first_report.seq < webhook.seq
        assert first_report.body["state"] == "idle"


def test_deregistering_sends_a_deregister_webhook_and_forgets_the_agent(opscore):
    with running_mock_agentkit(
        opscore_url=opscore.url, api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, agents=1
    ) as mock:
        agent = mock.agents[0]
        response = requests.delete(f"{mock.url}/v1/agents/{agent.agent_id}", timeout=5)
        again = requests.delete(f"{mock.url}/v1/agents/{agent.agent_id}", timeout=5)
        run = requests.post(
            f"{mock.url}/v1/agents/{agent.agent_id}/run",
            json={"senderId": "opscore", "messageType": "workflow_task", "payload": {}},
            timeout=5,
        )
        opscore.wait_until(lambda: opscore.webhooks("DEREGISTER"), what="the DEREGISTER webhook")
        listed = mock.registered_agents()

    assert response.status_code == 200
    assert response.json()["status"] == "success"
    assert response.json()["data"] == {"agentId": agent.agent_id}
    assert again.status_code == 404
    assert run.status_code == 404
    assert listed == []
    [webhook] = opscore.webhooks("DEREGISTER")
    timestamp = webhook.headers["X-AgentKit-Timestamp"]
    assert webhook.headers["X-AgentKit-Signature"] == expected_signature(timestamp, webhook.raw)
    assert webhook.body["agent_details"]["agentId"] == agent.agent_id
    assert webhook.body["agent_details"]["agentName"] == agent.name
    assert "registrationTime" not in webhook.body["agent_details"]


def test_no_webhook_is_sent_without_a_secret(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=2) as mock:
        assert mock.drain(5)
        outbound = mock.outbound()

    assert opscore.webhooks() == []
    assert outbound == []


def test_a_redirect_is_a_failed_webhook_and_is_not_followed(opscore):
    with running_mock_agentkit(
        opscore_url=opscore.url,
        api_key=API_KEY,
        webhook_secret=WEBHOOK_SECRET,
        webhook_url=f"{opscore.url}/redirecting-notify",
        agents=1,
    ) as mock:
        assert mock.drain(5)
        outbound = mock.outbound()

    assert opscore.webhooks() == []
    assert [(o.kind, o.status, o.ok) for o in outbound] == [("webhook:REGISTER", 302, False)]
