"""Dispatch controls end to end: a live Ops-Core, a real Celery worker running the engine, and the mock AgentKit
with simulated agents, all over HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from opscore_project.testing import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

WF = {"id": "live_controls", "tasks": [{"taskId": "only", "agentCapability": "summarise"}]}


@pytest.fixture
def stack(live_stack):
    from mock_agentkit.testing import AgentSpec

    for index in range(3):
        live_stack.mock.add_agent(AgentSpec(f"summariser-{index}", ["summarise"], work_time=0.3))
    live_stack.mock.drain()
    assert api(live_stack, "POST", "/v1/opscore/workflows", json=WF).status_code == 201
    wait_until(
        lambda: api(live_stack, "GET", "/v1/opscore/agents?capability=summarise").json()["count"] == 3,
        timeout=20,
        message="three agents registered",
    )
    return live_stack


def api(stack, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {stack.operator_token}"}
    return requests.request(method, f"{stack.url}{path}", headers=headers, timeout=10, **kwargs)


def run(stack) -> str:
    answer = api(stack, "POST", f"/v1/opscore/workflows/{WF['id']}/run", json={})
    assert answer.status_code == 202, answer.text
    return answer.json()["sessionId"]


def status(stack, session_id: str) -> str:
    return api(stack, "GET", f"/v1/opscore/sessions/{session_id}").json()["status"]


def test_a_capability_limit_holds_on_the_live_stack(stack):
    assert api(stack, "PUT", "/v1/opscore/capability-limits/summarise", json={"maxInFlight": 1}).status_code == 200
    sessions = [run(stack) for _ in range(3)]
    peak, reasons = 0, set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        peak = max(peak, api(stack, "GET", "/v1/opscore/dispatch").json()["capabilityLimits"][0]["inFlight"])
        reasons |= {w["waitingReason"] for w in api(stack, "GET", "/v1/opscore/dispatch/waiting").json()["results"]}
        if all(status(stack, s) == "completed" for s in sessions):
            break
        time.sleep(0.05)
    assert [status(stack, s) for s in sessions] == ["completed"] * 3
    assert peak == 1
    assert "limit summarise: 1/1" in reasons


def test_pause_and_maintenance_mode_hold_work_until_resumed(stack):
    api(stack, "POST", f"/v1/opscore/workflows/{WF['id']}/pause", json={})
    held = run(stack)
    time.sleep(1.0)  # several engine ticks
    assert status(stack, held) == "pending"
    api(stack, "POST", f"/v1/opscore/workflows/{WF['id']}/resume")
    wait_until(lambda: status(stack, held) == "completed", timeout=30, message="resumed session to complete")

    api(stack, "POST", "/v1/opscore/dispatch/pause", json={"reason": "test"})
    held = run(stack)
    time.sleep(1.0)
    assert status(stack, held) == "pending"
    waiting = api(stack, "GET", "/v1/opscore/dispatch/waiting").json()["results"]
    assert [w["waitingReason"] for w in waiting] == ["dispatch paused"]
    api(stack, "POST", "/v1/opscore/dispatch/resume")
    wait_until(lambda: status(stack, held) == "completed", timeout=30, message="session to complete after resume")
