"""The Bearer fast path and the DRF view answer state reports identically."""

import json

import pytest
from rest_framework.test import APIClient

from lifecycle.models import AgentStateRecord

pytestmark = pytest.mark.django_db

URL = "/v1/opscore/agent/agent-1/state"


@pytest.fixture
def session_client(operator):
    client = APIClient()
    client.force_login(operator)
    return client


def post(client, body) -> tuple[int, dict]:
    response = client.generic("POST", URL, json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def test_a_logged_in_operator_reports_state_through_the_drf_view(session_client):
    status, body = post(session_client, {"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00Z", "state": "idle"})
    assert status == 202
    assert body == {"status": "success", "message": "State update accepted.", "agentId": "agent-1"}
    assert AgentStateRecord.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00Z", "state": "idle"},
        {"agentId": "agent-2", "timestamp": "nope", "state": "sleeping", "details": []},
        {},
    ],
)
def test_both_paths_give_the_same_answer(api_client, session_client, body):
    assert post(api_client, body) == post(session_client, body)


def test_the_fast_path_tags_the_request_log_with_the_agent(api_client, caplog):
    caplog.set_level("INFO", logger="opscore.request")
    status, _ = post(api_client, {"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00Z", "state": "idle"})
    assert status == 202
    record = next(r for r in caplog.records if r.name == "opscore.request")
    assert record.agent_id == "agent-1"
    assert record.status == 202
