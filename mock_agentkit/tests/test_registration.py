"""POST /v1/agents/register, GET /v1/agents, GET /health."""

from __future__ import annotations

import re
import uuid

import requests

from mock_agentkit.testing import running_mock_agentkit

from .conftest import API_KEY

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def registration(name: str = "alpha", **overrides):
    body = {
        "agentName": name,
        "version": "1.2",
        "capabilities": ["summarise"],
        "contactEndpoint": "http://127.0.0.1:9/",
        "metadata": {"description": "test"},
    }
    body.update(overrides)
    return body


def test_it_registers_an_agent_with_the_agentkit_envelope(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None) as mock:
        response = requests.post(f"{mock.url}/v1/agents/register", json=registration(), timeout=5)

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "success"
    assert body["message"] == "Agent registered successfully."
    assert body["error_code"] is None
    assert uuid.UUID(body["data"]["agentId"]).version == 4


def test_a_duplicate_name_gets_409_with_the_error_envelope(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None) as mock:
        first = requests.post(f"{mock.url}/v1/agents/register", json=registration(), timeout=5)
        second = requests.post(f"{mock.url}/v1/agents/register", json=registration(version="2.0"), timeout=5)
        listed = mock.registered_agents()

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["status"] == "error"
    assert second.json()["error_code"] == "AGENT_ALREADY_EXISTS"
    assert [a["version"] for a in listed] == ["1.2"]


def test_an_invalid_registration_gets_422(opscore):
    bad_bodies = [
        registration(agentName=""),
        {k: v for k, v in registration().items() if k != "agentName"},
        {k: v for k, v in registration().items() if k != "version"},
        registration(capabilities="summarise"),
        registration(capabilities=[1, 2]),
        registration(contactEndpoint="not-a-url"),
        registration(metadata=["x"]),
        ["not", "an", "object"],
    ]
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None) as mock:
        answers = [requests.post(f"{mock.url}/v1/agents/register", json=b, timeout=5) for b in bad_bodies]
        not_json = requests.post(
            f"{mock.url}/v1/agents/register", data=b"{nope", headers={"Content-Type": "application/json"}, timeout=5
        )
        listed = mock.registered_agents()

    assert [a.status_code for a in answers] == [422] * len(bad_bodies)
    assert all(a.json()["status"] == "error" and a.json()["error_code"] == "VALIDATION_ERROR" for a in answers)
    assert not_json.status_code == 422
    assert listed == []


def test_listing_returns_every_registered_agent(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=3) as mock:
        requests.post(f"{mock.url}/v1/agents/register", json=registration("extra", metadata=None), timeout=5)
        response = requests.get(f"{mock.url}/v1/agents", timeout=5)
        simulated = {a.agent_id: a for a in mock.agents}

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert body["message"] == "Agents retrieved successfully."
    assert body["error_code"] is None
    assert len(body["data"]) == 4
    for item in body["data"]:
        assert set(item) == {
            "agentId",
            "agentName",
            "version",
            "capabilities",
            "contactEndpoint",
            "registrationTime",
            "metadata",
        }
        assert ISO_Z.match(item["registrationTime"])
    by_id = {item["agentId"]: item for item in body["data"]}
    for agent_id, info in simulated.items():
        assert by_id[agent_id]["agentName"] == info.name
        assert by_id[agent_id]["capabilities"] == list(info.capabilities)
        assert by_id[agent_id]["contactEndpoint"] == f"http://127.0.0.1:{info.port}/"
    extra = next(item for item in body["data"] if item["agentName"] == "extra")
    assert extra["metadata"] == {}


def test_listing_off_answers_404_like_the_real_agentkit(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, listing=False) as mock:
        requests.post(f"{mock.url}/v1/agents/register", json=registration(), timeout=5)
        response = requests.get(f"{mock.url}/v1/agents", timeout=5)

    assert response.status_code == 404


def test_health_answers_200(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None) as mock:
        response = requests.get(f"{mock.url}/health", timeout=5)

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_simulated_agents_report_idle_right_after_registering(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=2) as mock:
        # Ready means: registered and first report sent — no waiting needed.
        reports = {a.agent_id: opscore.reports(a.agent_id) for a in mock.agents}

    for agent_id, received in reports.items():
        assert len(received) == 1
        report = received[0]
        assert report.headers["Authorization"] == f"Bearer {API_KEY}"
        assert report.headers["Content-Type"].startswith("application/json")
        assert report.body["agentId"] == agent_id
        assert report.body["state"] == "idle"
        assert report.body["details"] == {}
        assert report.body["timestamp"].endswith("+00:00")
