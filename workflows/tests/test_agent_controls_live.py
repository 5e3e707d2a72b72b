"""Operator controls end to end: a live Ops-Core, a real Celery worker running the engine, and the mock AgentKit
with simulated agents that receive tasks over HTTP and report their states."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests

from mock_agentkit.testing import AgentSpec
from opscore_project.observability.models import OperationEvent
from opscore_project.testing import wait_until
from workflows.models import TaskRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The worker (which runs the engine) reads the environment; the test process gets the same through settings.
BREAKER_ENV = {
    "OPSCORE_QUARANTINE_AFTER_FAILURES": "3",
    "OPSCORE_QUARANTINE_COOLDOWN_SECONDS": "3",
    "OPSCORE_QUARANTINE_MAX_COOLDOWN_SECONDS": "6",
}


@pytest.fixture
def short_breaker(monkeypatch, settings):
    """Short circuit-breaker settings for the worker that live_stack starts next (it inherits the environment)."""
    for name, value in BREAKER_ENV.items():
        monkeypatch.setenv(name, value)
        setattr(settings, name, int(value))


class Api:
    def __init__(self, stack) -> None:
        self.url = stack.url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {stack.operator_token}"

    def post(self, path: str, body: dict | None = None) -> dict:
        response = self.http.post(f"{self.url}{path}", json=body or {}, timeout=10)
        assert response.status_code in (200, 201, 202), response.text
        return response.json()

    def agent(self, agent_id: str) -> dict:
        return self.http.get(f"{self.url}/v1/opscore/agents/{agent_id}", timeout=10).json()

    def session(self, session_id: str) -> dict:
        return self.http.get(f"{self.url}/v1/opscore/sessions/{session_id}", timeout=10).json()

    def run(self, workflow_id: str) -> str:
        return self.post(f"/v1/opscore/workflows/{workflow_id}/run", {"initialPayload": {"text": "hi"}})["sessionId"]

    def wait_for(self, session_id: str, status: str, timeout: float = 15.0) -> dict:
        return wait_until(
            lambda: (body := self.session(session_id))["status"] == status and body,
            timeout=timeout,
            interval=0.1,
            message=f"session {session_id} {status}",
        )


def one_task(workflow_id: str, capability: str) -> dict:
    return {"id": workflow_id, "tasks": [{"taskId": "only", "agentCapability": capability}]}


def test_a_drained_agent_receives_no_new_task_while_another_does(live_stack):
    api, mock = Api(live_stack), live_stack.mock
    drained = mock.add_agent(AgentSpec("drained", ["summarise"], work_time=1.0)).agent_id
    api.post(f"/v1/opscore/agents/{drained}/drain")
    other = mock.add_agent(AgentSpec("other", ["summarise"], work_time=0.1)).agent_id
    api.post("/v1/opscore/workflows", one_task("wf-drain", "summarise"))
    for _ in range(3):
        api.wait_for(api.run("wf-drain"), "completed")
    assert len(mock.received_tasks(other)) == 3
    assert mock.received_tasks(drained) == []
    assert api.agent(drained)["drained"] is True

    # Undrained, it takes work again; drained while it works, its current task still finishes.
    api.post(f"/v1/opscore/agents/{drained}/undrain")
    api.post(f"/v1/opscore/agents/{other}/drain")
    session_id = api.run("wf-drain")
    mock.wait_for_tasks(drained, 1)
    api.post(f"/v1/opscore/agents/{drained}/drain")
    assert api.wait_for(session_id, "completed")["tasks"][0]["agentId"] == drained
    waiting = api.run("wf-drain")
    time.sleep(1.0)
    assert api.session(waiting)["status"] == "pending"  # both drained: nobody takes it
    api.post(f"/v1/opscore/agents/{other}/undrain")
    api.wait_for(waiting, "completed")


def test_an_agent_failing_every_task_is_quarantined_and_gets_one_trial_after_the_cool_down(short_breaker, live_stack):
    api, mock = Api(live_stack), live_stack.mock
    broken = mock.add_agent(AgentSpec("broken", ["flaky"], failure_rate=1.0, work_time=0.05)).agent_id
    api.post("/v1/opscore/workflows", one_task("wf-flaky", "flaky"))
    failed = [api.run("wf-flaky") for _ in range(3)]
    for session_id in failed:
        api.wait_for(session_id, "failed")
    agent = wait_until(lambda: (a := api.agent(broken))["quarantined"] and a, timeout=5, message="quarantine")
    assert agent["breakerState"] == "open" and agent["consecutiveFailures"] == 3

    first, second = api.run("wf-flaky"), api.run("wf-flaky")
    time.sleep(1.5)  # inside the 3 s cool-down: nothing more is sent
    assert len(mock.received_tasks(broken)) == 3
    # After it: one trial task, which fails, so the breaker opens again with the cool-down doubled.
    wait_until(lambda: len(mock.received_tasks(broken)) == 4, timeout=10, message="the trial task")
    again = wait_until(
        lambda: (a := api.agent(broken))["breakerState"] == "open" and a["consecutiveFailures"] == 4 and a,
        timeout=5,
        message="the breaker reopened",
    )
    trial = TaskRun.objects.filter(agent__agent_id=broken).order_by("dispatched_at").last()
    assert trial.dispatched_at.isoformat() >= agent["quarantinedUntil"].replace("Z", "+00:00")
    time.sleep(1.0)
    assert len(mock.received_tasks(broken)) == 4  # a single trial
    assert {api.session(first)["status"], api.session(second)["status"]} == {"failed", "pending"}

    logged = list(
        OperationEvent.objects.filter(agent_id=broken, event_type__startswith="agent.quarantine")
        .order_by("id")
        .values_list("event_type", "context")
    )
    assert [event_type for event_type, _ in logged] == [
        "agent.quarantined",
        "agent.quarantine_trial",
        "agent.quarantined",
    ]
    assert [context.get("cooldownSeconds") for _, context in logged] == [3, None, 6]
    assert again["quarantinedUntil"] is not None

    # Released by hand, it takes the waiting task at once.
    api.post(f"/v1/opscore/agents/{broken}/release")
    wait_until(lambda: len(mock.received_tasks(broken)) == 5, timeout=5, message="the task after release")


def test_capabilities_announced_in_a_report_or_set_by_an_operator_route_tasks(live_stack):
    api, mock = Api(live_stack), live_stack.mock
    # Registered with no capabilities (as the real AgentKit's webhook may say): capability routing cannot use it.
    reporter = mock.add_agent(AgentSpec("reporter", [], work_time=0.05)).agent_id
    assert api.agent(reporter)["capabilities"] == []
    report = {
        "agentId": reporter,
        "timestamp": datetime.now(UTC).isoformat(),
        "state": "idle",
        "details": {"capabilities": ["announce"]},
    }
    response = requests.post(
        f"{live_stack.url}/v1/opscore/agent/{reporter}/state",
        json=report,
        headers={"Authorization": f"Bearer {live_stack.api_key}"},
        timeout=10,
    )
    assert response.status_code == 202
    agent = api.agent(reporter)
    assert (agent["capabilities"], agent["capabilitiesSource"]) == (["announce"], "report")
    api.post("/v1/opscore/workflows", one_task("wf-announce", "announce"))
    assert api.wait_for(api.run("wf-announce"), "completed")["tasks"][0]["agentId"] == reporter

    response = api.http.put(
        f"{api.url}/v1/opscore/agents/{reporter}/capabilities", json={"capabilities": ["by-hand"]}, timeout=10
    )
    assert response.status_code == 200 and response.json()["capabilitiesSource"] == "operator"
    api.post("/v1/opscore/workflows", one_task("wf-by-hand", "by-hand"))
    assert api.wait_for(api.run("wf-by-hand"), "completed")["tasks"][0]["agentId"] == reporter
