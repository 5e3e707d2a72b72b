import pytest

from workflows import services
from workflows.models import TaskRun, WorkflowDefinition, WorkflowSession
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_client(operator_api_client, django_capture_on_commit_callbacks):
    """An operator client running each request's on-commit work (dispatch) as a real request would, inside the
    test transaction."""
    api_client = operator_api_client
    post = api_client.post

    def committing_post(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return post(*args, **kwargs)

    api_client.post = committing_post
    return api_client


@pytest.fixture
def sample(define):
    return define(linear("summarise", "translate", wf_id="sample_workflow"))


def trigger(api_client, agent_id, body, **headers):
    """Trigger a workflow for an agent, then let the engine dispatch (as its loop would)."""
    response = api_client.post(f"/v1/opscore/agent/{agent_id}/workflow", body, format="json", **headers)
    services.engine_drain()
    return response


def test_the_agent_trigger_starts_a_session_for_that_agent(api_client, sample, make_agent, sent):
    make_agent("a1", ["summarise"])
    response = trigger(api_client, "a1", {"workflowDefinitionId": "sample_workflow", "initialPayload": {"t": 1}})
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"sessionId", "workflowId", "message"} and body["workflowId"] == "sample_workflow"
    session = WorkflowSession.objects.get(pk=body["sessionId"])
    assert session.agent.agent_id == "a1" and session.initial_payload == {"t": 1}


def test_the_agent_trigger_rejects_both_or_neither(api_client, sample, make_agent):
    make_agent("a1", ["summarise"])
    neither = trigger(api_client, "a1", {"initialPayload": {}})
    both = trigger(api_client, "a1", {"workflowDefinitionId": "sample_workflow", "workflowDefinition": linear("c")})
    assert neither.status_code == 400 and both.status_code == 400
    assert "workflowDefinitionId" in neither.json()["errors"]


def test_the_agent_trigger_answers_404_for_unknown_definition_or_agent(api_client, sample, make_agent):
    make_agent("a1", ["summarise"])
    assert trigger(api_client, "a1", {"workflowDefinitionId": "missing"}).status_code == 404
    assert trigger(api_client, "ghost", {"workflowDefinitionId": "sample_workflow"}).status_code == 404


def test_an_inline_definition_is_stored_and_validated(api_client, make_agent, sent):
    make_agent("a1", ["c"])
    response = trigger(api_client, "a1", {"workflowDefinition": linear("c", wf_id="inline_wf")})
    assert response.status_code == 202
    assert WorkflowDefinition.objects.get(workflow_id="inline_wf").source == "inline"
    bad = trigger(
        api_client, "a1", {"workflowDefinition": {"id": "x", "tasks": [{"taskId": "a", "agentCapability": ""}]}}
    )
    assert bad.status_code == 400
    assert "workflowDefinition.tasks[0].agentCapability" in bad.json()["errors"]


def test_the_same_idempotency_key_returns_the_same_session(api_client, sample, make_agent, sent):
    make_agent("a1", ["summarise"])
    first = trigger(api_client, "a1", {"workflowDefinitionId": "sample_workflow"}, HTTP_IDEMPOTENCY_KEY="k-1")
    second = trigger(api_client, "a1", {"workflowDefinitionId": "sample_workflow"}, HTTP_IDEMPOTENCY_KEY="k-1")
    run = api_client.post("/v1/opscore/workflows/sample_workflow/run", {}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.json()["sessionId"] == second.json()["sessionId"] == run.json()["sessionId"]
    assert WorkflowSession.objects.count() == 1


def test_the_run_endpoint_routes_by_capability_and_pins_the_version(api_client, sample, make_agent, sent, define):
    make_agent("a1", ["summarise"])
    define({**linear("other", wf_id="sample_workflow"), "version": "2.0"})
    response = api_client.post(
        "/v1/opscore/workflows/sample_workflow/run", {"initialPayload": {"x": 1}, "version": "1.0"}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["workflowVersion"] == "1.0"
    session = WorkflowSession.objects.get(pk=response.json()["sessionId"])
    assert session.agent is None and session.definition.version == "1.0"
    services.engine_drain()
    assert [c["agent_id"] for c in sent.calls] == ["a1"]
    bad = api_client.post("/v1/opscore/workflows/sample_workflow/run", {"callbackUrl": "not a url"}, format="json")
    assert bad.status_code == 400 and "callbackUrl" in bad.json()["errors"]
    assert api_client.post("/v1/opscore/workflows/nope/run", {}, format="json").status_code == 404
    assert (
        api_client.post("/v1/opscore/workflows/sample_workflow/run", {"agentId": "x"}, format="json").status_code == 404
    )


def test_session_detail_has_the_documented_shape(api_client, sample, make_agent, sent, report):
    make_agent("a1", ["summarise", "translate"])
    session_id = trigger(api_client, "a1", {"workflowDefinitionId": "sample_workflow"}).json()["sessionId"]
    report("a1", "active")
    report("a1", "idle", {"result": {"summary": "s"}})
    body = api_client.get(f"/v1/opscore/sessions/{session_id}").json()
    assert set(body) == {
        "sessionId", "workflowId", "workflowVersion", "agentId", "status", "startedAt", "endedAt", "error",
        "initialPayload", "createdAt", "timings", "tasks",
    }  # fmt: skip
    assert set(body["timings"]) == {"queueWaitMs", "runMs", "totalMs"}
    assert body["status"] == "running" and body["agentId"] == "a1"
    first = body["tasks"][0]
    assert set(first) == {
        "taskRunId", "taskId", "attempt", "status", "agentId", "createdAt", "readyAt", "dispatchedAt", "startedAt",
        "endedAt", "durationMs", "queueWaitMs", "dispatchLatencyMs", "result", "error", "waitingReason", "kind",
        "prompt", "answeredBy", "answeredAt", "answeredVia",
    }  # fmt: skip
    assert first["status"] == "completed" and first["result"] == {"summary": "s"} and first["durationMs"] >= 0
    assert [t["taskId"] for t in body["tasks"]] == ["s1", "s2"]
    assert api_client.get("/v1/opscore/sessions/not-a-uuid").status_code == 404


def test_sessions_are_listed_with_filters(api_client, sample, make_agent, sent):
    make_agent("a1", ["summarise"])
    api_client.post("/v1/opscore/workflows/sample_workflow/run", {}, format="json")  # runs on a1
    services.engine_drain()
    trigger(api_client, "a1", {"workflowDefinitionId": "sample_workflow"})  # waits for a1
    everything = api_client.get("/v1/opscore/sessions").json()
    assert everything["count"] == 2 and "tasks" not in everything["results"][0]
    assert api_client.get("/v1/opscore/sessions?agent=a1").json()["count"] == 2  # one targeted, one ran there
    assert api_client.get("/v1/opscore/sessions?status=running").json()["count"] == 1
    assert api_client.get("/v1/opscore/sessions?status=pending").json()["count"] == 1
    assert api_client.get("/v1/opscore/sessions?workflow=other").json()["count"] == 0
    assert api_client.get("/v1/opscore/sessions?since=2999-01-01T00:00:00Z").json()["count"] == 0
    assert api_client.get("/v1/opscore/sessions?until=2999-01-01T00:00:00Z").json()["count"] == 2
    assert api_client.get("/v1/opscore/sessions?since=yesterday").status_code == 400
    assert api_client.get("/v1/opscore/sessions?status=weird").status_code == 400


def test_cancel_and_retry_endpoints(api_client, sample, make_agent, sent, report):
    make_agent("a1", ["summarise", "translate"])
    session_id = trigger(api_client, "a1", {"workflowDefinitionId": "sample_workflow"}).json()["sessionId"]
    assert api_client.post(f"/v1/opscore/sessions/{session_id}/retry").status_code == 409
    cancelled = api_client.post(f"/v1/opscore/sessions/{session_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["tasks"][0]["status"] == "cancelled"
    assert api_client.post(f"/v1/opscore/sessions/{session_id}/cancel").status_code == 409
    second = trigger(api_client, "a1", {"workflowDefinitionId": "sample_workflow"}).json()["sessionId"]
    report("a1", "active")
    report("a1", "error", {"message": "bad"})
    retried = api_client.post(f"/v1/opscore/sessions/{second}/retry")
    assert retried.status_code == 202 and retried.json()["status"] in ("pending", "running")
    assert TaskRun.objects.filter(session_id=second, task_id="s1").count() == 2
    assert api_client.post("/v1/opscore/sessions/00000000-0000-0000-0000-000000000000/cancel").status_code == 404


def test_admin_actions_cancel_and_retry(staff_client, sample, make_agent, sent, start):
    session = start(sample)
    response = staff_client.post(
        "/admin/workflows/workflowsession/", {"action": "cancel_sessions", "_selected_action": [str(session.pk)]}
    )
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.status == "cancelled"
    assert staff_client.get(f"/admin/workflows/workflowsession/{session.pk}/change/").status_code == 200
