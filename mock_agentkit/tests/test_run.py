"""POST /v1/agents/{id}/run: forwarding to simulated agents, their state reports, tool invocations, errors."""

from __future__ import annotations

import time
from datetime import datetime

import requests

from mock_agentkit.testing import AgentSpec, running_mock_agentkit

from .conftest import API_KEY, report_states


def task_body(task_name: str = "summarise", **extra):
    return {
        "senderId": "opscore",
        "messageType": "workflow_task",
        "payload": {"task_name": task_name, "task_parameters": {"text": "hello"}},
        "sessionContext": {"sessionId": "sess-1"},
        "task_name": task_name,
        "opscore_session_id": "sess-1",
        "opscore_task_id": "task-1",
        **extra,
    }


def run(mock, agent_id: str, body) -> requests.Response:
    return requests.post(f"{mock.url}/v1/agents/{agent_id}/run", json=body, timeout=5)


def test_run_accepts_forwards_and_the_agent_reports_active_then_idle(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=1) as mock:
        agent = mock.agents[0]
        response = run(mock, agent.agent_id, task_body(unknown_field="dropped"))
        [message] = mock.wait_for_tasks(agent.agent_id, 1)
        opscore.wait_until(lambda: len(opscore.reports(agent.agent_id)) == 3, what="active + idle")

    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": f"Task accepted for agent {agent.agent_id}.",
        "data": {"agentId": agent.agent_id, "dispatch_status": "scheduled"},
        "error_code": None,
    }
    timestamp = message.pop("timestamp")
    assert datetime.fromisoformat(timestamp).tzinfo is not None
    assert message == task_body()  # unknown top-level fields dropped, the known ones kept as sent
    reports = opscore.reports(agent.agent_id)
    assert [r.body["state"] for r in reports] == ["idle", "active", "idle"]
    assert reports[1].body["details"] == {"task_name": "summarise"}
    assert reports[2].body["details"] == {
        "result": {"task_name": "summarise", "echo": {"text": "hello"}, "agent": agent.name, "summary": "hello"}
    }
    for report in reports:  # reports never carry task or session ids
        assert "opscore_task_id" not in report.body["details"]
        assert set(report.body) == {"agentId", "timestamp", "state", "details"}
    stamps = [datetime.fromisoformat(r.body["timestamp"]) for r in reports]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_the_agent_works_for_its_work_time_before_reporting_idle(opscore):
    spec = AgentSpec("slow", ["classify"], work_time=0.3)
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=[spec]) as mock:
        agent = mock.agents[0]
        assert run(mock, agent.agent_id, task_body("classify")).status_code == 202
        opscore.wait_until(lambda: len(opscore.reports(agent.agent_id)) == 3, what="active + idle")

    _, active, idle = opscore.reports(agent.agent_id)
    assert idle.arrived - active.arrived >= 0.29


def test_echo_task_id_puts_the_task_id_in_report_details(opscore):
    with running_mock_agentkit(
        opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=1, echo_task_id=True
    ) as mock:
        agent = mock.agents[0]
        run(mock, agent.agent_id, task_body())
        opscore.wait_until(lambda: len(opscore.reports(agent.agent_id)) == 3, what="active + idle")

    _, active, idle = opscore.reports(agent.agent_id)
    assert active.body["details"]["opscore_task_id"] == "task-1"
    assert idle.body["details"]["opscore_task_id"] == "task-1"


def test_run_for_an_unknown_agent_is_404(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None) as mock:
        response = run(mock, "no-such-agent", task_body())

    assert response.status_code == 404
    assert response.json()["status"] == "error"
    assert response.json()["error_code"] == "AGENT_NOT_FOUND"


def test_run_for_an_agent_without_contact_endpoint_is_400(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None) as mock:
        agent_id = mock.register_agent("endpointless", capabilities=["summarise"])
        response = run(mock, agent_id, task_body())

    assert response.status_code == 400
    assert response.json()["error_code"] == "AGENT_NO_ENDPOINT"


def test_run_with_a_bad_body_is_422(opscore):
    good = task_body()
    bad_bodies = [
        {k: v for k, v in good.items() if k != "senderId"},
        {k: v for k, v in good.items() if k != "messageType"},
        {k: v for k, v in good.items() if k != "payload"},
        {**good, "payload": "text"},
        {**good, "sessionContext": "x"},
        {**good, "opscore_task_id": 5},
        [good],
    ]
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=1) as mock:
        agent = mock.agents[0]
        answers = [run(mock, agent.agent_id, body) for body in bad_bodies]
        assert mock.drain(5)
        received = mock.received_tasks(agent.agent_id)

    assert [a.status_code for a in answers] == [422] * len(bad_bodies)
    assert all(a.json()["error_code"] == "VALIDATION_ERROR" for a in answers)
    assert received == []


def test_tool_invocation_answers_synchronously_with_the_result(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=1) as mock:
        agent = mock.agents[0]
        echo = run(
            mock,
            agent.agent_id,
            {
                "senderId": "opscore",
                "messageType": "tool_invocation",
                "payload": {"tool_name": "echo", "arguments": {"a": 1, "b": [2]}},
            },
        )
        add = run(
            mock,
            agent.agent_id,
            {
                "senderId": "opscore",
                "messageType": "tool_invocation",
                "payload": {"tool_name": "add", "arguments": {"numbers": [1, 2, 3.5]}},
            },
        )
        unknown = run(
            mock,
            agent.agent_id,
            {"senderId": "opscore", "messageType": "tool_invocation", "payload": {"tool_name": "rm", "arguments": {}}},
        )
        malformed = run(mock, agent.agent_id, {"senderId": "opscore", "messageType": "tool_invocation", "payload": {}})
        assert mock.drain(5)
        received = mock.received_tasks(agent.agent_id)

    assert echo.status_code == 200
    assert echo.json()["status"] == "success"
    assert echo.json()["data"]["result"] == {"a": 1, "b": [2]}
    assert add.json()["data"]["result"] == {"sum": 6.5}
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "TOOL_NOT_FOUND"
    assert malformed.status_code == 400
    assert received == []  # tools run inside AgentKit, nothing is forwarded


def test_failure_rate_one_reports_error_then_idle(opscore):
    with running_mock_agentkit(
        opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=1, failure_rate=1.0
    ) as mock:
        agent = mock.agents[0]
        run(mock, agent.agent_id, task_body())
        opscore.wait_until(lambda: len(opscore.reports(agent.agent_id)) == 4, what="active, error, idle")

    _, active, error, idle = opscore.reports(agent.agent_id)
    assert active.body["state"] == "active"
    assert error.body["state"] == "error"
    assert error.body["details"]["error_code"] == "SIMULATED_FAILURE"
    assert error.body["details"]["message"]
    assert idle.body["state"] == "idle"
    assert idle.body["details"] == {}
    assert idle.arrived - error.arrived >= 0.04


def test_set_behaviour_fail_next_fails_only_the_next_tasks(opscore):
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=1) as mock:
        agent = mock.agents[0]
        mock.set_behaviour(agent.agent_id, fail_next=1)
        run(mock, agent.agent_id, task_body())
        opscore.wait_until(lambda: len(opscore.reports(agent.agent_id)) == 4, what="the failed task")
        run(mock, agent.agent_id, task_body())
        opscore.wait_until(lambda: len(opscore.reports(agent.agent_id)) == 6, what="the second task")

    assert report_states(opscore, agent.agent_id) == ["idle", "active", "error", "idle", "active", "idle"]
    assert "result" in opscore.reports(agent.agent_id)[-1].body["details"]


def test_a_silent_agent_receives_the_task_and_never_reports(opscore):
    specs = [AgentSpec("quiet", ["summarise"], silent=True), AgentSpec("chatty", ["summarise"])]
    with running_mock_agentkit(opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=specs) as mock:
        quiet, chatty = mock.agent("quiet"), mock.agent("chatty")
        run(mock, quiet.agent_id, task_body())
        run(mock, chatty.agent_id, task_body())
        mock.wait_for_tasks(quiet.agent_id, 1)
        opscore.wait_until(lambda: len(opscore.reports(chatty.agent_id)) == 3, what="chatty's reports")
        assert mock.drain(5)
        time.sleep(0.1)
        mock.set_behaviour(quiet.agent_id, silent=False)
        run(mock, quiet.agent_id, task_body())
        opscore.wait_until(lambda: len(opscore.reports(quiet.agent_id)) == 3, what="quiet's reports once unmuted")
        received = mock.received_tasks(quiet.agent_id)

    assert len(received) == 2
    assert report_states(opscore, quiet.agent_id) == ["idle", "active", "idle"]


def test_tasks_for_one_agent_are_worked_one_at_a_time(opscore):
    with running_mock_agentkit(
        opscore_url=opscore.url, api_key=API_KEY, webhook_secret=None, agents=1, work_time=0.05
    ) as mock:
        agent = mock.agents[0]
        for i in range(3):
            run(mock, agent.agent_id, task_body(f"t{i}"))
        opscore.wait_until(lambda: len(opscore.reports(agent.agent_id)) == 7, what="3 tasks")

    assert report_states(opscore, agent.agent_id) == ["idle"] + ["active", "idle"] * 3
