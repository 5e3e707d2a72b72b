"""End to end: live Ops-Core (state listener in the web thread), a real Celery worker (bridge dispatch, outcomes,
deadline checks) on Redis and Postgres, and the mock AgentKit with simulated agents over HTTP."""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest
import requests
from django.utils import timezone

from lifecycle.models import Agent
from lifecycle.services import agent_register
from mock_agentkit.testing import AgentSpec, running_mock_agentkit
from opscore_project.testing import free_port, wait_until
from workflows.models import CallbackDelivery, TaskRun, WorkflowSession

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FAST_WORKER_ENV = {
    "AGENTKIT_DISPATCH_MAX_RETRIES": "2",
    "AGENTKIT_DISPATCH_BACKOFF_SECONDS": "0.1",
    "AGENTKIT_CONNECT_TIMEOUT": "0.5",
    "AGENTKIT_READ_TIMEOUT": "2",
}


class Ops:
    """Talks to the live Ops-Core over HTTP, as clients do."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {api_key}"

    def define(self, definition: dict) -> None:
        response = self.http.post(f"{self.base_url}/v1/opscore/workflows", json=definition, timeout=10)
        assert response.status_code in (200, 201), response.text

    def trigger(self, agent_id: str, workflow_id: str, payload: dict | None = None) -> str:
        response = self.http.post(
            f"{self.base_url}/v1/opscore/agent/{agent_id}/workflow",
            json={"workflowDefinitionId": workflow_id, "initialPayload": payload or {}},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return response.json()["sessionId"]

    def run(self, workflow_id: str, payload: dict | None = None) -> str:
        response = self.http.post(
            f"{self.base_url}/v1/opscore/workflows/{workflow_id}/run",
            json={"initialPayload": payload or {}},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return response.json()["sessionId"]

    def session(self, session_id: str) -> dict:
        return self.http.get(f"{self.base_url}/v1/opscore/sessions/{session_id}", timeout=10).json()

    def wait_for(self, session_id: str, status: str, timeout: float = 12.0) -> dict:
        def reached():
            body = self.session(session_id)
            return body if body["status"] == status else None

        try:
            return wait_until(reached, timeout=timeout, interval=0.1, message=f"session {status}")
        except AssertionError:
            raise AssertionError(f"session not {status}: {self.session(session_id)}") from None


@pytest.fixture
def ops(live_server, operator_token) -> Ops:
    return Ops(live_server.url, operator_token)


@pytest.fixture
def environment(live_server, settings, celery_worker_factory):
    """``environment(agents, **mock_options)`` → mock handle; agents registered with their capabilities."""
    with ExitStack() as stack:

        def start(agents: list[AgentSpec], worker_env: dict[str, str] | None = None, **options):
            mock = stack.enter_context(
                running_mock_agentkit(
                    opscore_url=live_server.url, api_key=settings.OPSCORE_API_KEY, webhook_secret=None, agents=agents,
                    **options,
                )
            )  # fmt: skip
            settings.AGENTKIT_API_URL = mock.url
            for info in mock.agents:  # what the registration webhook / polling would store
                agent_register(
                    agent_id=info.agent_id, name=info.name, version="1.0", capabilities=list(info.capabilities),
                    contact_endpoint=info.contact_endpoint, metadata={}, source="webhook",
                )  # fmt: skip
            celery_worker_factory({"AGENTKIT_API_URL": mock.url, **FAST_WORKER_ENV, **(worker_env or {})})
            return mock

        yield start


def linear(wf_id: str, *caps: str, **policy) -> dict:
    tasks = []
    for index, cap in enumerate(caps):
        tasks.append(
            {"taskId": f"s{index + 1}", "agentCapability": cap,
             "parameters": {"text": "{{ payload.text }}", "previous": f"{{{{ tasks.s{index}.result }}}}"} if index
             else {"text": "{{ payload.text }}"},
             "nextTaskId": f"s{index + 2}" if index + 1 < len(caps) else None, **policy}
        )  # fmt: skip
    return {"id": wf_id, "version": "1.0", "tasks": tasks}


def test_a_linear_workflow_completes(environment, ops):
    mock = environment([AgentSpec("worker", ["summarise", "translate", "classify"])])
    ops.define(linear("lin", "summarise", "translate", "classify"))
    agent_id = mock.agent("worker").agent_id
    session_id = ops.trigger(agent_id, "lin", {"text": "hello"})
    body = ops.wait_for(session_id, "completed")
    assert [(t["taskId"], t["status"]) for t in body["tasks"]] == [
        ("s1", "completed"), ("s2", "completed"), ("s3", "completed"),
    ]  # fmt: skip
    received = mock.received_tasks(agent_id)
    assert [m["payload"]["task_name"] for m in received] == ["summarise", "translate", "classify"]
    assert received[0]["payload"]["task_parameters"] == {"text": "hello"}
    assert all(t["dispatchLatencyMs"] is not None for t in body["tasks"])  # AgentKit's 202 seen by the worker
    assert body["timings"]["totalMs"] >= body["timings"]["runMs"] >= 0
    assert Agent.objects.get(agent_id=agent_id).assigned_task == ""


def test_parallel_branches_of_a_dag_run_at_the_same_time_on_two_agents(environment, ops):
    mock = environment([AgentSpec("one", ["branch"], work_time=1.0), AgentSpec("two", ["branch"], work_time=1.0)])
    ops.define(
        {"id": "dag", "tasks": [
            {"taskId": "left", "agentCapability": "branch"},
            {"taskId": "right", "agentCapability": "branch"},
            {"taskId": "join", "agentCapability": "branch", "dependsOn": ["left", "right"],
             "parameters": {"l": "{{ tasks.left.result }}"}},
        ]}
    )  # fmt: skip
    body = ops.wait_for(ops.run("dag"), "completed")
    runs = {r.task_id: r for r in TaskRun.objects.filter(session_id=body["sessionId"])}
    left, right, join = runs["left"], runs["right"], runs["join"]
    assert {left.agent.agent_id, right.agent.agent_id} == {a.agent_id for a in mock.agents}
    assert left.started_at < right.ended_at and right.started_at < left.ended_at  # overlapping
    assert join.dispatched_at >= max(left.ended_at, right.ended_at)


def test_a_task_for_a_busy_agent_waits_and_starts_when_it_reports_idle(environment, ops):
    mock = environment([AgentSpec("busy", ["c"], work_time=0.8)])
    ops.define(linear("one", "c"))
    agent_id = mock.agent("busy").agent_id
    first = ops.trigger(agent_id, "one")
    second = ops.trigger(agent_id, "one")
    assert ops.session(second)["tasks"][0]["status"] == "pending"
    ops.wait_for(first, "completed")
    ops.wait_for(second, "completed")
    first_run = TaskRun.objects.get(session_id=first)
    second_run = TaskRun.objects.get(session_id=second)
    assert second_run.dispatched_at >= first_run.ended_at
    # dispatched by the idle report itself, not by a periodic sweep (none runs in this test)
    assert (second_run.dispatched_at - first_run.ended_at).total_seconds() < 1.0


def test_an_error_is_retried_and_then_succeeds(environment, ops):
    mock = environment([AgentSpec("flaky", ["c"])])
    agent_id = mock.agent("flaky").agent_id
    mock.set_behaviour(agent_id, fail_next=1)
    ops.define(linear("retry", "c", maxRetries=2, retryBackoffSeconds=0.2))
    body = ops.wait_for(ops.trigger(agent_id, "retry"), "completed")
    assert [(t["attempt"], t["status"]) for t in body["tasks"]] == [(1, "failed"), (2, "completed")]
    assert "Agent reported error" in body["tasks"][0]["error"]
    assert len(mock.received_tasks(agent_id)) == 2


def test_exhausted_retries_run_the_fallback(environment, ops):
    mock = environment([AgentSpec("flaky", ["c", "plan_b"])])
    agent_id = mock.agent("flaky").agent_id
    mock.set_behaviour(agent_id, fail_next=2)
    ops.define(
        {"id": "fb", "defaults": {"retryBackoffSeconds": 0.1}, "tasks": [
            {"taskId": "main", "agentCapability": "c", "maxRetries": 1, "fallbackTaskId": "backup",
             "nextTaskId": "after"},
            {"taskId": "backup", "agentCapability": "plan_b"},
            {"taskId": "after", "agentCapability": "c"},
        ]}
    )  # fmt: skip
    body = ops.wait_for(ops.trigger(agent_id, "fb"), "completed")
    assert [(t["taskId"], t["status"]) for t in body["tasks"]] == [
        ("main", "failed"), ("main", "failed"), ("backup", "completed"), ("after", "completed"),
    ]  # fmt: skip


def test_exhausted_retries_without_fallback_fail_the_session_with_the_reason(environment, ops):
    mock = environment([AgentSpec("broken", ["c"])])
    agent_id = mock.agent("broken").agent_id
    mock.set_behaviour(agent_id, failure_rate=1.0)
    ops.define(linear("doomed", "c", "c", maxRetries=1, retryBackoffSeconds=0.1))
    body = ops.wait_for(ops.trigger(agent_id, "doomed"), "failed")
    assert body["error"].startswith("Task s1 failed: Agent reported error")
    assert [t["status"] for t in body["tasks"]] == ["failed", "failed"]


def test_a_silent_agent_times_out_and_the_retry_succeeds(environment, ops):
    mock = environment([AgentSpec("quiet", ["c"], silent=True)])
    agent_id = mock.agent("quiet").agent_id
    ops.define(linear("slow", "c", maxRetries=1, retryBackoffSeconds=0.1, timeoutSeconds=1.5))
    session_id = ops.trigger(agent_id, "slow")
    mock.wait_for_tasks(agent_id, count=1)
    mock.set_behaviour(agent_id, silent=False)
    body = ops.wait_for(session_id, "completed")
    assert [(t["attempt"], t["status"]) for t in body["tasks"]] == [(1, "timed_out"), (2, "completed")]
    assert "Timed out" in body["tasks"][0]["error"]


def test_agentkit_down_retries_the_dispatch_then_fails_clearly(live_server, settings, celery_worker_factory, ops):
    down = f"http://127.0.0.1:{free_port()}"
    settings.AGENTKIT_API_URL = down
    Agent.objects.create(
        agent_id="lonely", name="lonely", capabilities=["c"], capabilities_known=True, source="webhook",
        state="idle", state_timestamp=timezone.now(), last_seen_at=timezone.now(),
    )  # fmt: skip
    celery_worker_factory({"AGENTKIT_API_URL": down, **FAST_WORKER_ENV})
    ops.define(linear("nowhere", "c"))
    body = ops.wait_for(ops.trigger("lonely", "nowhere"), "failed")
    assert "Dispatch failed after 3 attempt(s): unreachable" in body["error"], body["error"]
    assert Agent.objects.get(agent_id="lonely").assigned_task == ""


def test_cancel_mid_run(environment, ops):
    mock = environment([AgentSpec("slowpoke", ["c"], work_time=1.5)])
    agent_id = mock.agent("slowpoke").agent_id
    ops.define(linear("long", "c", "c"))
    session_id = ops.trigger(agent_id, "long")
    wait_until(lambda: ops.session(session_id)["tasks"][0]["status"] == "running", timeout=8, message="running")
    response = ops.http.post(f"{ops.base_url}/v1/opscore/sessions/{session_id}/cancel", timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert Agent.objects.get(agent_id=agent_id).assigned_task == ""
    mock.wait_for_reports(agent_id, count=3, timeout=5)  # idle, active, and the late idle of the cancelled task
    mock.drain()
    body = ops.session(session_id)
    assert body["status"] == "cancelled"
    assert [(t["taskId"], t["status"]) for t in body["tasks"]] == [("s1", "cancelled")]
    assert len(mock.received_tasks(agent_id)) == 1
    assert WorkflowSession.objects.get(pk=session_id).ended_at is not None


def test_an_agent_agentkit_forgot_is_replaced_by_another_capable_agent(environment, ops):
    mock = environment([AgentSpec("forgotten", ["c"]), AgentSpec("spare", ["c"])])
    forgotten, spare = mock.agent("forgotten").agent_id, mock.agent("spare").agent_id
    Agent.objects.filter(agent_id=spare).update(last_assigned_at=timezone.now())  # the forgotten one goes first
    mock.deregister(forgotten)  # AgentKit answers 404 on /run for it from now on; Ops-Core does not know yet
    ops.define(linear("reroute", "c"))
    body = ops.wait_for(ops.run("reroute"), "completed")
    assert [(t["attempt"], t["status"], t["agentId"]) for t in body["tasks"]] == [(1, "completed", spare)]
    assert TaskRun.objects.get(session_id=body["sessionId"]).dispatch_count == 2
    assert Agent.objects.get(agent_id=forgotten).deregistered_at is not None


def test_the_completion_callback_is_delivered_signed_by_the_worker(live_server, settings, celery_worker_factory, ops):
    from opscore_project.lib.signing import signature_matches
    from workflows.tests.test_callbacks import Receiver

    receiver = Receiver()
    receiver.statuses = [503, 200]  # the first attempt fails, the retry succeeds
    settings.OPSCORE_CALLBACK_ALLOW_HTTP, settings.OPSCORE_CALLBACK_ALLOWED_HOSTS = True, ["127.0.0.1"]  # loopback
    try:
        celery_worker_factory(
            {"OPSCORE_CALLBACK_SECRET": "cb-secret", "OPSCORE_CALLBACK_BACKOFF_SECONDS": "0.2"}
            | {"OPSCORE_CALLBACK_ALLOW_HTTP": "true", "OPSCORE_CALLBACK_ALLOWED_HOSTS": "127.0.0.1"}
        )
        ops.define(linear("cb", "nobody_has_this"))
        response = ops.http.post(
            f"{ops.base_url}/v1/opscore/workflows/cb/run", json={"callbackUrl": receiver.url}, timeout=10
        )
        session_id = response.json()["sessionId"]
        ops.http.post(f"{ops.base_url}/v1/opscore/sessions/{session_id}/cancel", timeout=10)
        wait_until(lambda: len(receiver.requests) >= 2, timeout=8, message="callback and its retry")
    finally:
        receiver.close()
    headers, body = receiver.requests[-1]
    assert signature_matches("cb-secret", headers["X-OpsCore-Timestamp"], body, headers["X-OpsCore-Signature"])
    assert json.loads(body)["session"]["status"] == "cancelled"
    deliveries = list(CallbackDelivery.objects.filter(session_id=session_id).order_by("attempt"))
    assert [(d.attempt, d.success) for d in deliveries] == [(1, False), (2, True)]
