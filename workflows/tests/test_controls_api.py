"""The dispatch-controls API: workflow pause/resume/limits, maintenance mode, capability limits, waiting runs."""

import pytest

from workflows.models import CapabilityLimit, DispatchControl, WorkflowControl, WorkflowSession

pytestmark = pytest.mark.django_db

BASE = "/v1/opscore"


def single(cap: str, wf_id: str):
    return {"id": wf_id, "tasks": [{"taskId": "only", "agentCapability": cap}]}


@pytest.fixture
def wf(define):
    return define(single("c", "wf"))


def test_pause_and_resume_a_workflow(operator_api_client, wf, make_agent, sent):
    make_agent("a1", ["c"])
    body = operator_api_client.post(f"{BASE}/workflows/wf/pause", {"reason": "bad deploy"}, format="json").json()
    assert body["paused"] is True and body["pauseReason"] == "bad deploy" and body["rejectWhenPaused"] is False
    run = operator_api_client.post(f"{BASE}/workflows/wf/run", {}, format="json")
    assert run.status_code == 202
    session_id = run.json()["sessionId"]
    detail = operator_api_client.get(f"{BASE}/sessions/{session_id}").json()
    assert detail["status"] == "pending" and detail["tasks"][0]["waitingReason"] == "workflow paused"
    controls = operator_api_client.get(f"{BASE}/workflows/wf/controls").json()
    assert controls["pendingSessions"] == 1 and controls["paused"] is True
    body = operator_api_client.post(f"{BASE}/workflows/wf/resume").json()
    assert body["paused"] is False and body["pausedAt"] is None


def test_reject_when_paused_answers_409_on_both_triggers(operator_api_client, api_client, wf, make_agent):
    make_agent("a1", ["c"])
    operator_api_client.post(f"{BASE}/workflows/wf/pause", {"rejectWhenPaused": True}, format="json")
    answer = operator_api_client.post(f"{BASE}/workflows/wf/run", {}, format="json")
    assert answer.status_code == 409 and answer.json()["code"] == "conflict"
    answer = api_client.post(f"{BASE}/agent/a1/workflow", {"workflowDefinitionId": "wf"}, format="json")
    assert answer.status_code == 409
    assert not WorkflowSession.objects.exists()


def test_pause_of_an_unknown_workflow_is_404(operator_api_client):
    for action in ("pause", "resume", "controls"):
        method = operator_api_client.get if action == "controls" else operator_api_client.post
        assert method(f"{BASE}/workflows/nope/{action}").status_code == 404
    assert not WorkflowControl.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [({"rejectWhenPaused": "maybe"}, "rejectWhenPaused"), ({"reason": "x" * 501}, "reason"), ([1], "non_field_errors")],
)
def test_pause_validates_its_body(operator_api_client, wf, body, field):
    answer = operator_api_client.post(f"{BASE}/workflows/wf/pause", body, format="json")
    assert answer.status_code == 400 and field in answer.json()["errors"]
    assert not WorkflowControl.objects.exists()


def test_workflow_limits_are_set_and_removed(operator_api_client, wf):
    body = operator_api_client.put(f"{BASE}/workflows/wf/limits", {"maxRunningSessions": 3}, format="json").json()
    assert body["maxRunningSessions"] == 3
    status = operator_api_client.get(f"{BASE}/dispatch").json()
    assert status["workflowLimits"] == [{"workflowId": "wf", "maxRunningSessions": 3, "runningSessions": 0}]
    body = operator_api_client.put(f"{BASE}/workflows/wf/limits", {"maxRunningSessions": None}, format="json").json()
    assert body["maxRunningSessions"] is None


@pytest.mark.parametrize("value", [0, -1, "many", 10_000_001])
def test_workflow_limits_refuse_bad_values(operator_api_client, wf, value):
    answer = operator_api_client.put(f"{BASE}/workflows/wf/limits", {"maxRunningSessions": value}, format="json")
    assert answer.status_code == 400 and "maxRunningSessions" in answer.json()["errors"]
    assert not WorkflowControl.objects.exists()


def test_maintenance_mode_through_the_api(operator_api_client, wf, make_agent, sent):
    make_agent("a1", ["c"])
    body = operator_api_client.post(f"{BASE}/dispatch/pause", {"reason": "upgrade"}, format="json").json()
    assert body["paused"] is True and body["reason"] == "upgrade" and body["pausedAt"]
    session_id = operator_api_client.post(f"{BASE}/workflows/wf/run", {}, format="json").json()["sessionId"]
    waiting = operator_api_client.get(f"{BASE}/dispatch/waiting").json()
    assert waiting["count"] == 1
    assert waiting["results"][0]["sessionId"] == session_id
    assert waiting["results"][0]["waitingReason"] == "dispatch paused"
    body = operator_api_client.post(f"{BASE}/dispatch/resume").json()
    assert body["paused"] is False
    assert DispatchControl.objects.get().paused_at is None


def test_capability_limits_crud(operator_api_client):
    answer = operator_api_client.put(f"{BASE}/capability-limits/summarise", {"maxInFlight": 10}, format="json")
    assert answer.status_code == 200
    assert answer.json() == {"capability": "summarise", "maxInFlight": 10, "inFlight": 0}
    listed = operator_api_client.get(f"{BASE}/capability-limits").json()
    assert listed["results"] == [{"capability": "summarise", "maxInFlight": 10, "inFlight": 0}]
    assert operator_api_client.delete(f"{BASE}/capability-limits/summarise").status_code == 204
    assert operator_api_client.delete(f"{BASE}/capability-limits/summarise").status_code == 404
    assert not CapabilityLimit.objects.exists()


@pytest.mark.parametrize("body", [{}, {"maxInFlight": 0}, {"maxInFlight": None}, {"maxInFlight": "ten"}])
def test_capability_limits_refuse_bad_values(operator_api_client, body):
    answer = operator_api_client.put(f"{BASE}/capability-limits/summarise", body, format="json")
    assert answer.status_code == 400 and "maxInFlight" in answer.json()["errors"]
    assert not CapabilityLimit.objects.exists()


def test_a_capability_name_too_long_is_refused(operator_api_client):
    answer = operator_api_client.put(f"{BASE}/capability-limits/{'c' * 256}", {"maxInFlight": 1}, format="json")
    assert answer.status_code == 400 and "capability" in answer.json()["errors"]


def test_waiting_runs_name_the_full_limit(operator_api_client, define, start, make_agent, sent):
    make_agent("a1", ["c"])
    make_agent("a2", ["c"])
    operator_api_client.put(f"{BASE}/capability-limits/c", {"maxInFlight": 1}, format="json")
    definition = define(single("c", "wf"))
    start(definition)
    start(definition)
    waiting = operator_api_client.get(f"{BASE}/dispatch/waiting").json()["results"]
    assert [w["waitingReason"] for w in waiting] == ["limit c: 1/1"]
    status = operator_api_client.get(f"{BASE}/dispatch").json()
    assert status["capabilityLimits"] == [{"capability": "c", "maxInFlight": 1, "inFlight": 1}]
    assert status["waitingTasks"] == 1
