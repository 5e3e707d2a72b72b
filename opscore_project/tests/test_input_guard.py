"""NUL characters in any API input answer 400 naming the field and store nothing (Postgres cannot hold U+0000)."""

import json

import pytest

from lifecycle.models import Agent, AgentStateRecord
from workflows.models import WorkflowDefinition, WorkflowSession
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db


@pytest.fixture
def sample():
    from workflows.services import definition_create

    return definition_create(data=linear("summarise", wf_id="sample_workflow"))[0]


def assert_names(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["errors"], body


def test_a_nul_in_a_query_parameter_is_a_400_naming_it(operator_api_client, sample):
    response = operator_api_client.get("/v1/opscore/workflows/sample_workflow", {"version": "1.0\x00"})
    assert_names(response, "version")


def test_a_nul_inside_the_initial_payload_is_a_400_and_starts_nothing(operator_api_client, sample):
    body = json.dumps({"initialPayload": {"text": "before\u0000after"}})
    response = operator_api_client.generic(
        "POST", "/v1/opscore/workflows/sample_workflow/run", body, content_type="application/json"
    )
    assert_names(response, "initialPayload.text")
    assert not WorkflowSession.objects.exists()


def test_a_nul_in_a_definition_names_the_task_field_and_stores_nothing(operator_api_client):
    definition = linear("summarise", wf_id="nul_wf")
    definition["tasks"][0]["name"] = "bad\u0000name"
    response = operator_api_client.post("/v1/opscore/workflows", definition, format="json")
    assert_names(response, "tasks[0].name")
    assert not WorkflowDefinition.objects.exists()


def test_a_nul_in_a_state_report_is_refused_on_the_fast_path(api_client):
    body = {"agentId": "a1", "timestamp": "2026-11-24T09:00:00+00:00", "state": "idle", "details": {"m": "x\u0000"}}
    response = api_client.post("/v1/opscore/agent/a1/state", body, format="json")
    assert_names(response, "details.m")
    assert not AgentStateRecord.objects.exists() and not Agent.objects.exists()


def test_a_nul_in_a_key_of_a_json_object_is_refused(api_client):
    body = {"agentId": "a1", "timestamp": "2026-11-24T09:00:00+00:00", "state": "idle", "details": {"k\u0000": 1}}
    assert_names(api_client.post("/v1/opscore/agent/a1/state", body, format="json"), "details.k\\u0000")


def test_a_nul_in_a_path_segment_names_the_path_parameter(api_client):
    response = api_client.get("/v1/opscore/agent/a%001/state")
    assert_names(response, "agent_id")
    assert not Agent.objects.exists()


def test_a_nul_in_a_stored_header_is_refused(api_client, sample):
    Agent.objects.create(agent_id="a1", capabilities=["summarise"])
    response = api_client.post(
        "/v1/opscore/agent/a1/workflow",
        {"workflowDefinitionId": "sample_workflow"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k\x00",
    )
    assert_names(response, "Idempotency-Key")
    assert not WorkflowSession.objects.exists()


def test_an_escaped_backslash_before_u0000_is_not_a_nul(operator_api_client, sample):
    body = json.dumps({"initialPayload": {"text": "a literal \\u0000 in text"}})
    assert "\\\\u0000" in body
    response = operator_api_client.generic(
        "POST", "/v1/opscore/workflows/sample_workflow/run", body, content_type="application/json"
    )
    assert response.status_code == 202
