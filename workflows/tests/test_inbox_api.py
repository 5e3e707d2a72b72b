"""``GET /v1/opscore/inbox`` and ``POST /v1/opscore/sessions/{id}/tasks/{taskId}/input``."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from workflows import services

pytestmark = pytest.mark.django_db

APPROVAL = {
    "id": "approve_it",
    "tasks": [{"taskId": "review", "kind": "approval", "prompt": "Ship {{ payload.name }}?", "assignees": ["editors"]}],
}
FORM = {
    "id": "fill_it",
    "tasks": [
        {"taskId": "form", "kind": "input", "prompt": "Size?",
         "inputSchema": {"type": "object", "required": ["size"],
                         "properties": {"size": {"type": "integer", "maximum": 9}}}},
    ],
}  # fmt: skip


@pytest.fixture
def sessions(define, start):
    return {
        "approval": start(define(APPROVAL), payload={"name": "v2"}),
        "form": start(define(FORM)),
    }


@pytest.fixture
def editor_client(django_user_model, make_token):
    """An operator token owned by a user in the 'editors' group."""
    user = django_user_model.objects.create_user("ed")
    user.groups.add(Group.objects.create(name="editors"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token('operator', name='ed', user=user)}")
    return client


def input_url(session, task_id: str) -> str:
    return f"/v1/opscore/sessions/{session.pk}/tasks/{task_id}/input"


def test_the_inbox_lists_only_tasks_the_caller_may_answer(sessions, operator_api_client, editor_client):
    body = operator_api_client.get("/v1/opscore/inbox").json()
    assert [item["taskId"] for item in body["results"]] == ["form"]  # the approval is for editors
    item = body["results"][0]
    assert item["kind"] == "input" and item["inputSchema"]["required"] == ["size"] and item["options"] is None
    editors = editor_client.get("/v1/opscore/inbox").json()["results"]
    assert [(i["taskId"], i["prompt"], i["options"]) for i in editors] == [
        ("review", "Ship v2?", ["approve", "reject"]),
        ("form", "Size?", None),
    ]
    assert [i["taskId"] for i in editor_client.get("/v1/opscore/inbox?kind=approval").json()["results"]] == ["review"]
    assert editor_client.get("/v1/opscore/inbox?workflow=fill_it").json()["count"] == 1
    assert editor_client.get(f"/v1/opscore/inbox?session={sessions['form'].pk}").json()["count"] == 1
    assert editor_client.get("/v1/opscore/inbox?kind=robot").status_code == 400


def test_an_editor_approves_and_the_session_completes(sessions, editor_client):
    session = sessions["approval"]
    response = editor_client.post(
        input_url(session, "review"), {"option": "approve", "comment": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY="a1"
    )
    assert response.status_code == 200, response.content
    assert response.json()["result"] == {"approved": True, "option": "approve", "comment": "ok", "by": "ed"}
    assert response.json()["answeredVia"] == "api"
    services.engine_drain()
    detail = editor_client.get(f"/v1/opscore/sessions/{session.pk}").json()
    assert detail["status"] == "completed" and detail["tasks"][0]["answeredBy"] == "ed"
    again = editor_client.post(
        input_url(session, "review"), {"option": "approve", "comment": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY="a1"
    )
    assert again.status_code == 200
    conflict = editor_client.post(input_url(session, "review"), {"option": "reject"}, format="json")
    assert conflict.status_code == 409 and "already answered by ed" in conflict.json()["message"]


def test_a_non_assignee_and_the_agent_key_get_403(sessions, operator_api_client, api_client):
    response = operator_api_client.post(input_url(sessions["approval"], "review"), {"option": "approve"}, format="json")
    assert response.status_code == 403 and "editors" in response.json()["message"]
    agent = api_client.post(input_url(sessions["form"], "form"), {"value": {"size": 1}}, format="json")
    assert agent.status_code == 403 and "'operator' scope" in agent.json()["message"]
    assert api_client.get("/v1/opscore/inbox").status_code == 403


def test_bad_values_get_400_naming_each_field(sessions, operator_api_client):
    url = input_url(sessions["form"], "form")
    response = operator_api_client.post(url, {"value": {"size": 12, "colour": "red"}}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"value.size", "value.colour"}
    assert operator_api_client.post(url, {"value": "x"}, format="json").json()["errors"] == {
        "value": ["Must be an object."]
    }
    assert operator_api_client.post(url, ["x"], format="json").status_code == 400
    ok = operator_api_client.post(url, {"value": {"size": 3}}, format="json", HTTP_X_OPSCORE_INTERFACE="cli")
    assert ok.status_code == 200 and ok.json()["answeredVia"] == "cli" and ok.json()["result"] == {"size": 3}


def test_unknown_sessions_and_tasks_are_404(sessions, operator_api_client):
    assert operator_api_client.post(input_url(sessions["form"], "nope"), {}, format="json").status_code == 404
    assert operator_api_client.post("/v1/opscore/sessions/x/tasks/form/input", {}, format="json").status_code == 404


def test_a_staff_session_may_answer(sessions, staff_client):
    response = staff_client.post(
        input_url(sessions["form"], "form"), {"value": {"size": 2}}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["answeredBy"] == "operator"


def test_running_a_workflow_without_capabilities_needs_an_agent(operator_api_client, define):
    define({"id": "solo", "tasks": [{"taskId": "a"}, {"taskId": "b", "agentCapability": "c", "dependsOn": ["a"]}]})
    response = operator_api_client.post("/v1/opscore/workflows/solo/run", {}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["tasks[0].agentCapability"]
    assert "routed by capability" in response.json()["errors"]["tasks[0].agentCapability"][0]
