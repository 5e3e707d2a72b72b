import pytest

pytestmark = pytest.mark.django_db


def test_a_contract_report_is_accepted_and_readable(api_client):
    body = {"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00.123456+00:00", "state": "idle", "details": {}}
    response = api_client.post("/v1/opscore/agent/agent-1/state", body, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "success"
    response = api_client.get("/v1/opscore/agent/agent-1/state")
    assert response.status_code == 200
    assert response.json()["state"] == "idle"
