"""Least privilege: the agents' shared key does only what agents do; operators use scoped tokens."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from lifecycle.models import Agent
from opscore_project.authn.models import ApiToken
from workflows.models import WorkflowDefinition, WorkflowSession
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def sample():
    from workflows.services import definition_create

    Agent.objects.create(agent_id="a1", capabilities=["c"], capabilities_known=True)
    return definition_create(data=linear("c", wf_id="wf"))[0]


def assert_needs(response, scope: str) -> None:
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["code"] == "permission_denied"
    assert f"'{scope}' scope" in body["message"]


def test_the_shared_key_cannot_define_workflows_cancel_sessions_or_read_the_log(api_client, sample):
    assert_needs(api_client.post("/v1/opscore/workflows", linear("c", wf_id="evil"), format="json"), "operator")
    assert not WorkflowDefinition.objects.filter(workflow_id="evil").exists()
    assert_needs(api_client.get("/v1/opscore/events"), "operator")
    assert_needs(api_client.get("/v1/opscore/sessions"), "operator")
    assert_needs(api_client.post("/v1/opscore/workflows/wf/run", {}, format="json"), "operator")
    assert_needs(api_client.get("/metrics"), "metrics")


def test_the_shared_key_does_everything_the_agentkit_contract_needs(api_client, sample):
    report = {"agentId": "a1", "timestamp": timezone.now().isoformat(), "state": "idle", "details": {}}
    assert api_client.post("/v1/opscore/agent/a1/state", report, format="json").status_code == 202
    assert api_client.get("/v1/opscore/agent/a1/state").status_code == 200
    started = api_client.post("/v1/opscore/agent/a1/workflow", {"workflowDefinitionId": "wf"}, format="json")
    assert started.status_code == 202
    session_id = started.json()["sessionId"]
    assert api_client.get(f"/v1/opscore/sessions/{session_id}").status_code == 200
    assert_needs(api_client.post(f"/v1/opscore/sessions/{session_id}/cancel"), "operator")
    assert WorkflowSession.objects.get().status != "cancelled"


def test_an_operator_token_runs_and_cancels_sessions(operator_api_client, sample):
    started = operator_api_client.post("/v1/opscore/workflows/wf/run", {}, format="json")
    assert started.status_code == 202
    session_id = started.json()["sessionId"]
    assert operator_api_client.post(f"/v1/opscore/sessions/{session_id}/cancel").status_code == 200
    assert operator_api_client.get("/v1/opscore/events").status_code == 200
    assert_needs(operator_api_client.get("/metrics"), "metrics")


def test_a_metrics_token_only_scrapes(make_token, sample):
    client = bearer(make_token("metrics"))
    assert client.get("/metrics").status_code == 200
    assert_needs(client.get("/v1/opscore/agent/a1/state"), "agent")
    assert_needs(client.get("/v1/opscore/workflows"), "operator")


def test_an_admin_token_does_everything(make_token, sample):
    client = bearer(make_token("admin"))
    assert client.get("/metrics").status_code == 200
    assert client.get("/v1/opscore/workflows").status_code == 200
    assert client.get("/v1/opscore/agent/a1/state").status_code in (200, 404)


def test_a_per_agent_token_reports_only_for_its_own_agent(make_token):
    client = bearer(make_token("agent", agent_id="a1"))
    now = timezone.now().isoformat()
    own = client.post("/v1/opscore/agent/a1/state", {"agentId": "a1", "timestamp": now, "state": "idle"}, "json")
    assert own.status_code == 202
    other = client.post("/v1/opscore/agent/a2/state", {"agentId": "a2", "timestamp": now, "state": "idle"}, "json")
    assert other.status_code == 403 and "another agent" in other.json()["message"]
    assert not Agent.objects.filter(agent_id="a2").exists()


def test_an_expired_token_is_refused(make_token):
    raw = make_token("operator", expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(raw).get("/v1/opscore/workflows")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


def test_a_non_staff_session_has_no_scope(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="a-long-enough-password")
    client.force_login(user)
    assert_needs(client.get("/v1/opscore/workflows"), "operator")
    assert_needs(client.get("/metrics"), "metrics")


def test_the_management_command_prints_a_working_operator_token(capsys):
    call_command("opscore_token", "create", "--scope", "operator", "--name", "ci")
    captured = capsys.readouterr()
    raw = captured.out.strip()
    assert raw.startswith("ock_") and "\n" not in raw
    token = ApiToken.objects.get(name="ci")
    assert token.scope_list == ["operator"] and raw not in captured.err
    assert bearer(raw).get("/v1/opscore/workflows").status_code == 200


def test_the_management_command_refuses_unknown_scopes():
    result = subprocess.run(
        [sys.executable, "manage.py", "opscore_token", "create", "--scope", "root", "--name", "x"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DEBUG": "true"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "invalid choice: 'root'" in result.stderr
