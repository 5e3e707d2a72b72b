"""The SDK and CLI driving a whole workflow: live Ops-Core, a real Celery worker, the mock AgentKit with simulated
agents that really report their states. ``wait_for_session`` sees a session complete, fail and be retried."""

from __future__ import annotations

import json

import pytest
from opscore_sdk.cli import main

from sdk.tests.conftest import needs_bridge, needs_workflow_api
from sdk.tests.workflow_data import DEFINITION

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, needs_workflow_api, needs_bridge]

WEBHOOK_SECRET = "sdk-e2e-webhook-secret"


@pytest.fixture
def stack(live_server, settings, api_key, celery_worker_factory):
    """Mock AgentKit + two simulated agents known to Ops-Core with their capabilities, and a worker."""
    from mock_agentkit.testing import AgentSpec, running_mock_agentkit

    settings.OPSCORE_WEBHOOK_SECRET = WEBHOOK_SECRET
    agents = [
        AgentSpec("summariser", ["summarise"], work_time=0.2),
        AgentSpec("translator", ["translate"], work_time=0.2),
    ]
    with running_mock_agentkit(
        opscore_url=live_server.url, api_key=api_key, webhook_secret=WEBHOOK_SECRET, agents=agents
    ) as mock:
        mock.drain()
        settings.AGENTKIT_API_URL = mock.url
        celery_worker_factory({"AGENTKIT_API_URL": mock.url, "OPSCORE_WEBHOOK_SECRET": WEBHOOK_SECRET})
        yield mock


def test_a_workflow_runs_to_completion(client, stack):
    client.create_workflow(DEFINITION)
    for name, capability in (("summariser", "summarise"), ("translator", "translate")):
        assert client.get_agent(stack.agent(name).agent_id).capabilities == [capability]

    started = client.trigger_workflow("sdk_test_workflow", initial_payload={"text": "hello"})
    updates = []
    session = client.wait_for_session(started.session_id, timeout=60, poll_interval=0.2, on_update=updates.append)
    assert session.status == "completed", session.raw
    assert [t.task_id for t in session.tasks] == ["step_1", "step_2"]
    assert all(t.status == "completed" for t in session.tasks)
    assert session.tasks[0].agent_id == stack.agent("summariser").agent_id
    assert session.tasks[1].agent_id == stack.agent("translator").agent_id
    assert session.ended_at >= session.started_at
    assert updates[-1].status == "completed"

    events = client.list_events(session=started.session_id) if _has_events() else []
    if events:
        assert all(e.session_id == started.session_id for e in events)


def test_a_failed_session_is_retried_from_the_failed_task(client, stack):
    client.create_workflow(DEFINITION)
    stack.set_behaviour(stack.agent("translator").agent_id, fail_next=1)
    started = client.trigger_workflow("sdk_test_workflow")
    failed = client.wait_for_session(started.session_id, timeout=60, poll_interval=0.2)
    assert failed.status == "failed", failed.raw
    assert [t.status for t in failed.tasks if t.task_id == "step_2"] == ["failed"]

    client.retry_session(started.session_id)
    final = client.wait_for_session(started.session_id, timeout=60, poll_interval=0.2)
    assert final.status == "completed", final.raw
    step_1_runs = [t for t in final.tasks if t.task_id == "step_1"]
    assert len(step_1_runs) == 1  # the completed step was kept, not re-run


def test_cli_run_wait_shows_progress_and_exits_0(client, stack, capsys, monkeypatch, live_server, operator_token):
    monkeypatch.setenv("OPSCORE_API_URL", live_server.url)
    monkeypatch.setenv("OPSCORE_API_KEY", operator_token)
    client.create_workflow(DEFINITION)
    code = main(["run", "sdk_test_workflow", "--param", "text=hi", "--wait", "--interval", "0.2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "task step_1  attempt 1  completed" in out
    assert "task step_2  attempt 1  completed" in out

    stack.set_behaviour(stack.agent("summariser").agent_id, fail_next=1)
    code = main(["--json", "run", "sdk_test_workflow", "--wait", "--interval", "0.2"])
    out = capsys.readouterr().out
    assert code == 1
    failed = json.loads(out)
    assert failed["status"] == "failed"

    code = main(["sessions", "retry", failed["sessionId"], "--wait", "--interval", "0.2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "completed" in out.splitlines()[-1]


def _has_events() -> bool:
    from sdk.tests.conftest import EVENTS_API

    return EVENTS_API
