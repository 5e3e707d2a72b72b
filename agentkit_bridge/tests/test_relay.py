"""The dispatch outbox and its relay: every dispatch is sent from the outbox, recorded, retried or fenced."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from agentkit_bridge import client, relay, tasks
from agentkit_bridge.dispatch import dispatches_discard, dispatches_enqueue
from agentkit_bridge.hooks import register_dispatch_listener, unregister_dispatch_listener
from agentkit_bridge.models import DispatchAttempt, DispatchOutbox
from agentkit_bridge.tests.conftest import AGENTKIT
from lifecycle.models import Agent
from opscore_project.observability.models import OperationEvent

pytestmark = pytest.mark.django_db

RUN_URL = f"{AGENTKIT}/v1/agents/agent-1/run"
ACCEPTED = {
    "status": "success",
    "message": "Task accepted",
    "data": {"agentId": "agent-1", "dispatch_status": "scheduled"},
}
MESSAGE = client.build_task_message(task_name="summarise", parameters={"n": 1}, session_id="sess-1", task_run_id="tr-1")


@pytest.fixture
def outcomes():
    seen = []
    register_dispatch_listener(seen.extend)
    yield seen
    unregister_dispatch_listener(seen.extend)


@pytest.fixture
def relay_requests(monkeypatch) -> list[list[str]]:
    """Relay messages asked for on Celery, kept off the broker."""
    requested: list[list[str]] = []
    monkeypatch.setattr("agentkit_bridge.dispatch.relay_request", requested.append)
    return requested


def enqueue(ref: str = "tr-1:1", agent_id: str = "agent-1") -> None:
    dispatches_enqueue(
        entries=[{"dispatch_ref": ref, "agent_id": agent_id, "message": MESSAGE, "session_id": "sess-1"}]
    )


def relay_until_done(now=None) -> list[str]:
    """Relay like the workers would: again whenever a retry becomes due (time moved forward)."""
    outcomes = []
    now = now or timezone.now()
    for _ in range(10):
        report = relay.dispatches_relay(now=now)
        if not report.sent and not DispatchOutbox.objects.exists():
            break
        outcomes += ["accepted"] * report.accepted + ["retrying"] * report.retrying + ["failed"] * report.failed
        now += timedelta(seconds=400)
    return outcomes


def test_an_accepted_dispatch_is_recorded_announced_and_leaves_the_outbox(mocked_agentkit, outcomes, relay_requests):
    mocked_agentkit.post(RUN_URL, json=ACCEPTED, status=202)
    enqueue()
    assert relay_until_done() == ["accepted"]
    attempt = DispatchAttempt.objects.get()
    assert (attempt.dispatch_ref, attempt.agent_id, attempt.attempt, attempt.outcome) == (
        "tr-1:1",
        "agent-1",
        1,
        "accepted",
    )
    assert attempt.status_code == 202 and attempt.latency_ms is not None
    assert json.loads(mocked_agentkit.calls[0].request.body) == MESSAGE
    [outcome] = outcomes
    assert outcome.accepted and outcome.error_kind == "" and outcome.attempts == 1 and outcome.status_code == 202
    assert not DispatchOutbox.objects.exists()
    event = OperationEvent.objects.get(event_type="task.dispatch_attempt")
    assert (event.task_id, event.session_id, event.agent_id) == ("tr-1:1", "sess-1", "agent-1")


def test_a_server_error_is_retried_with_backoff_then_succeeds(mocked_agentkit, outcomes, relay_requests, settings):
    settings.AGENTKIT_DISPATCH_BACKOFF_SECONDS = 2.0
    mocked_agentkit.post(RUN_URL, body="boom", status=503)
    mocked_agentkit.post(RUN_URL, body=requests.exceptions.ConnectionError("refused"))
    mocked_agentkit.post(RUN_URL, json=ACCEPTED, status=202)
    enqueue()
    now = timezone.now()
    assert relay.dispatches_relay(now=now).retrying == 1 and outcomes == []
    row = DispatchOutbox.objects.get()
    assert row.leased_until is None and 1.0 <= (row.next_attempt_at - now).total_seconds() <= 2.5
    assert relay.dispatches_relay(now=now).sent == 0  # not due yet
    assert relay_until_done(now + timedelta(seconds=5)) == ["retrying", "accepted"]
    rows = list(DispatchAttempt.objects.order_by("attempt").values_list("attempt", "outcome", "error_kind"))
    assert rows == [(1, "retrying", "server_error"), (2, "retrying", "unreachable"), (3, "accepted", "")]
    [outcome] = outcomes
    assert outcome.accepted and outcome.attempts == 3


def test_backoff_grows_exponentially_with_jitter_and_respects_retry_after():
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)):
        delays = [relay.backoff_seconds(attempt, base=1.0) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert relay.backoff_seconds(1, base=1.0, retry_after=30) == 30
    assert relay.backoff_seconds(30, base=1.0) <= relay.MAX_BACKOFF_SECONDS


def test_retries_stop_after_the_configured_maximum(mocked_agentkit, outcomes, relay_requests, settings):
    settings.AGENTKIT_DISPATCH_MAX_RETRIES = 2
    mocked_agentkit.post(RUN_URL, body=requests.exceptions.ReadTimeout("slow"))
    enqueue()
    assert relay_until_done() == ["retrying", "retrying", "failed"]
    assert len(mocked_agentkit.calls) == 3
    [outcome] = outcomes
    assert not outcome.accepted and outcome.error_kind == "timeout" and outcome.attempts == 3
    assert "gave up after 3 attempts" in outcome.error
    assert OperationEvent.objects.filter(event_type="task.dispatch_failed").count() == 1
    assert not DispatchOutbox.objects.exists()


def test_rate_limiting_is_retried_after_retry_after(mocked_agentkit, outcomes, relay_requests):
    mocked_agentkit.post(RUN_URL, json={}, status=429, headers={"Retry-After": "7"})
    enqueue()
    now = timezone.now()
    relay.dispatches_relay(now=now)
    assert (DispatchOutbox.objects.get().next_attempt_at - now).total_seconds() >= 7
    assert DispatchAttempt.objects.get().error_kind == "rate_limited"


@pytest.mark.parametrize("status", [400, 422])
def test_a_rejection_is_not_retried(mocked_agentkit, outcomes, relay_requests, status):
    mocked_agentkit.post(RUN_URL, json={"detail": "Agent has no contact endpoint"}, status=status)
    enqueue()
    assert relay_until_done() == ["failed"]
    assert len(mocked_agentkit.calls) == 1
    [outcome] = outcomes
    assert (outcome.accepted, outcome.error_kind, outcome.status_code) == (False, "rejected", status)
    assert "Agent has no contact endpoint" in outcome.error


def test_a_404_marks_the_agent_deregistered_and_is_not_retried(mocked_agentkit, outcomes, relay_requests):
    Agent.objects.create(agent_id="agent-1", source="webhook", registered_at=timezone.now(), state="idle")
    mocked_agentkit.post(RUN_URL, json={"detail": "Agent not found"}, status=404)
    enqueue()
    assert relay_until_done() == ["failed"]
    agent = Agent.objects.get(agent_id="agent-1")
    assert agent.deregistered_at is not None and agent.state == "idle"
    [outcome] = outcomes
    assert (outcome.error_kind, outcome.status_code, outcome.attempts) == ("agent_unknown", 404, 1)
    assert OperationEvent.objects.filter(event_type="agent.deregistered", agent_id="agent-1").exists()


def test_a_malformed_answer_is_a_permanent_failure(mocked_agentkit, outcomes, relay_requests):
    mocked_agentkit.post(RUN_URL, body="not json", status=202)
    enqueue()
    assert relay_until_done() == ["failed"]
    assert outcomes[0].error_kind == "malformed"


def test_a_redelivered_relay_message_does_not_post_again(mocked_agentkit, outcomes, relay_requests):
    mocked_agentkit.post(RUN_URL, json=ACCEPTED, status=202)
    enqueue()
    tasks.relay_dispatches(["tr-1:1"])
    assert tasks.relay_dispatches(["tr-1:1"]) == {"sent": 0, "accepted": 0, "stale": 0}  # redelivered (acks_late)
    assert len(mocked_agentkit.calls) == 1
    assert DispatchAttempt.objects.count() == 1
    assert not OperationEvent.objects.filter(event_type="task.dispatch_stale").exists()


def test_a_stale_relay_message_sends_nothing_and_says_so(mocked_agentkit, outcomes, relay_requests):
    """The run was retried, cancelled or re-routed after the message was queued: its token is no longer current."""
    mocked_agentkit.post(RUN_URL, json=ACCEPTED, status=202)
    enqueue("run-1:1")
    dispatches_discard(dispatch_refs=["run-1:1"])  # the engine discards it in the transition's transaction
    assert tasks.relay_dispatches(["run-1:1"])["stale"] == 1
    assert len(mocked_agentkit.calls) == 0
    event = OperationEvent.objects.get(event_type="task.dispatch_stale")
    assert event.task_id == "run-1:1" and "no longer current" in event.message


def test_a_relay_that_died_after_leasing_is_replaced_when_its_lease_expires(mocked_agentkit, outcomes, relay_requests):
    mocked_agentkit.post(RUN_URL, json=ACCEPTED, status=202)
    enqueue()
    now = timezone.now()
    relay._lease(None, 10, now)  # leased, then the worker was killed before it sent anything
    assert relay.dispatches_relay(now=now).sent == 0
    assert relay.dispatches_overdue(now=now + timedelta(seconds=5)) == []
    later = now + timedelta(seconds=60)
    assert relay.dispatches_overdue(now=later) == ["tr-1:1"]
    assert relay.dispatches_relay(refs=["tr-1:1"], now=later).accepted == 1


def test_the_relay_task_acks_late():
    assert tasks.relay_dispatches.acks_late is True
    assert tasks.relay_dispatches.name == "agentkit_bridge.tasks.relay_dispatches"


def test_dispatch_attempts_are_listed_in_the_admin(staff_client, mocked_agentkit, relay_requests):
    mocked_agentkit.post(RUN_URL, json={"detail": "no"}, status=422)
    enqueue()
    relay_until_done()
    response = staff_client.get("/admin/agentkit_bridge/dispatchattempt/?outcome=failed&q=tr-1")
    assert response.status_code == 200
    assert b"tr-1" in response.content
    assert staff_client.get("/admin/agentkit_bridge/dispatchattempt/add/").status_code == 403
