from __future__ import annotations

import json

import pytest
import requests
from django.utils import timezone

from agentkit_bridge import client, tasks
from agentkit_bridge.dispatch import enqueue_dispatch
from agentkit_bridge.hooks import DispatchOutcome, register_dispatch_listener, unregister_dispatch_listener
from agentkit_bridge.models import DispatchAttempt
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
    seen: list[DispatchOutcome] = []
    register_dispatch_listener(seen.append)
    yield seen
    unregister_dispatch_listener(seen.append)


@pytest.fixture
def queued(monkeypatch):
    """Retries the task queues, instead of sending them to the broker: [(args, countdown)]."""
    calls: list[tuple[tuple, float]] = []
    monkeypatch.setattr(
        tasks.dispatch_to_agentkit, "apply_async", lambda args, countdown: calls.append((args, countdown))
    )
    return calls


def run_until_final(queued, attempt_args=("tr-1", "agent-1", MESSAGE)) -> list[str]:
    """Run the task like a worker would: the first attempt, then each queued retry."""
    results = [tasks.dispatch_to_agentkit(*attempt_args)]
    while queued:
        args, _ = queued.pop(0)
        results.append(tasks.dispatch_to_agentkit(*args))
    return results


def test_an_accepted_dispatch_is_recorded_and_announced(mocked_agentkit, outcomes, queued):
    mocked_agentkit.post(RUN_URL, json=ACCEPTED, status=202)
    assert run_until_final(queued) == ["accepted"]
    attempt = DispatchAttempt.objects.get()
    assert (attempt.dispatch_ref, attempt.agent_id, attempt.attempt, attempt.outcome) == (
        "tr-1",
        "agent-1",
        1,
        "accepted",
    )
    assert attempt.status_code == 202 and attempt.latency_ms is not None
    assert json.loads(mocked_agentkit.calls[0].request.body) == MESSAGE
    [outcome] = outcomes
    assert outcome.accepted and outcome.error_kind == "" and outcome.attempts == 1 and outcome.status_code == 202
    assert outcome.dispatch_ref == "tr-1" and outcome.agent_id == "agent-1"
    event = OperationEvent.objects.get(event_type="task.dispatch_attempt")
    assert (event.task_id, event.session_id, event.agent_id) == ("tr-1", "sess-1", "agent-1")


def test_a_server_error_is_retried_with_backoff_then_succeeds(mocked_agentkit, outcomes, queued, settings):
    settings.AGENTKIT_DISPATCH_BACKOFF_SECONDS = 2.0
    mocked_agentkit.post(RUN_URL, body="boom", status=503)
    mocked_agentkit.post(RUN_URL, body=requests.exceptions.ConnectionError("refused"))
    mocked_agentkit.post(RUN_URL, json=ACCEPTED, status=202)
    first = tasks.dispatch_to_agentkit("tr-1", "agent-1", MESSAGE)
    assert first == "retrying" and outcomes == []
    (args, countdown) = queued.pop(0)
    assert args == ("tr-1", "agent-1", MESSAGE, 2)
    assert 1.0 <= countdown <= 2.0  # base 2 s, jittered between half and all of it
    assert run_until_final(queued, args) == ["retrying", "accepted"]
    rows = list(DispatchAttempt.objects.order_by("attempt").values_list("attempt", "outcome", "error_kind"))
    assert rows == [(1, "retrying", "server_error"), (2, "retrying", "unreachable"), (3, "accepted", "")]
    [outcome] = outcomes
    assert outcome.accepted and outcome.attempts == 3


def test_backoff_grows_exponentially_with_jitter_and_respects_retry_after():
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)):
        delays = [tasks.backoff_seconds(attempt, base=1.0) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert tasks.backoff_seconds(1, base=1.0, retry_after=30) == 30
    assert tasks.backoff_seconds(30, base=1.0) <= tasks.MAX_BACKOFF_SECONDS


def test_retries_stop_after_the_configured_maximum(mocked_agentkit, outcomes, queued, settings):
    settings.AGENTKIT_DISPATCH_MAX_RETRIES = 2
    mocked_agentkit.post(RUN_URL, body=requests.exceptions.ReadTimeout("slow"))
    assert run_until_final(queued) == ["retrying", "retrying", "failed"]
    assert len(mocked_agentkit.calls) == 3
    [outcome] = outcomes
    assert not outcome.accepted and outcome.error_kind == "timeout" and outcome.attempts == 3
    assert "gave up after 3 attempts" in outcome.error
    assert OperationEvent.objects.filter(event_type="task.dispatch_failed").count() == 1


def test_rate_limiting_is_retried_after_retry_after(mocked_agentkit, outcomes, queued):
    mocked_agentkit.post(RUN_URL, json={}, status=429, headers={"Retry-After": "7"})
    tasks.dispatch_to_agentkit("tr-1", "agent-1", MESSAGE)
    assert queued[0][1] == 7
    assert DispatchAttempt.objects.get().error_kind == "rate_limited"


@pytest.mark.parametrize("status", [400, 422])
def test_a_rejection_is_not_retried(mocked_agentkit, outcomes, queued, status):
    mocked_agentkit.post(RUN_URL, json={"detail": "Agent has no contact endpoint"}, status=status)
    assert run_until_final(queued) == ["failed"]
    assert len(mocked_agentkit.calls) == 1
    [outcome] = outcomes
    assert (outcome.accepted, outcome.error_kind, outcome.status_code) == (False, "rejected", status)
    assert "Agent has no contact endpoint" in outcome.error


def test_a_404_marks_the_agent_deregistered_and_is_not_retried(mocked_agentkit, outcomes, queued):
    Agent.objects.create(agent_id="agent-1", source="webhook", registered_at=timezone.now(), state="idle")
    mocked_agentkit.post(RUN_URL, json={"detail": "Agent not found"}, status=404)
    assert run_until_final(queued) == ["failed"]
    agent = Agent.objects.get(agent_id="agent-1")
    assert agent.deregistered_at is not None and agent.state == "idle"
    [outcome] = outcomes
    assert (outcome.error_kind, outcome.status_code, outcome.attempts) == ("agent_unknown", 404, 1)
    assert OperationEvent.objects.filter(event_type="agent.deregistered", agent_id="agent-1").exists()


def test_a_malformed_answer_is_a_permanent_failure(mocked_agentkit, outcomes, queued):
    mocked_agentkit.post(RUN_URL, body="not json", status=202)
    assert run_until_final(queued) == ["failed"]
    assert outcomes[0].error_kind == "malformed"


def test_a_redelivered_accepted_dispatch_is_not_posted_again(mocked_agentkit, outcomes, queued):
    mocked_agentkit.post(RUN_URL, json=ACCEPTED, status=202)
    tasks.dispatch_to_agentkit("tr-1", "agent-1", MESSAGE)
    tasks.dispatch_to_agentkit("tr-1", "agent-1", MESSAGE)  # the same message again (worker crash, acks_late)
    assert len(mocked_agentkit.calls) == 1
    assert DispatchAttempt.objects.count() == 1
    assert [o.accepted for o in outcomes] == [True, True]  # announced again: listeners guard by status


def test_a_redelivered_retrying_attempt_queues_its_retry_without_posting(mocked_agentkit, outcomes, queued):
    mocked_agentkit.post(RUN_URL, body="boom", status=500)
    tasks.dispatch_to_agentkit("tr-1", "agent-1", MESSAGE)
    queued.clear()  # the crash came before the retry reached the broker
    assert tasks.dispatch_to_agentkit("tr-1", "agent-1", MESSAGE) == "retrying"
    assert len(mocked_agentkit.calls) == 1
    assert [args[3] for args, _ in queued] == [2]


def test_enqueue_dispatch_waits_for_the_commit(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(tasks.dispatch_to_agentkit, "delay", lambda *args: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        enqueue_dispatch(dispatch_ref="tr-1", agent_id="agent-1", message=MESSAGE)
        assert sent == []
    assert len(callbacks) == 1
    assert sent == [("tr-1", "agent-1", MESSAGE)]


def test_the_dispatch_task_acks_late():
    assert tasks.dispatch_to_agentkit.acks_late is True
    assert tasks.dispatch_to_agentkit.name == "agentkit_bridge.tasks.dispatch_to_agentkit"


def test_dispatch_attempts_are_listed_in_the_admin(staff_client, mocked_agentkit, queued):
    mocked_agentkit.post(RUN_URL, json={"detail": "no"}, status=422)
    tasks.dispatch_to_agentkit("tr-1", "agent-1", MESSAGE)
    response = staff_client.get("/admin/agentkit_bridge/dispatchattempt/?outcome=failed&q=tr-1")
    assert response.status_code == 200
    assert b"tr-1" in response.content
    assert staff_client.get("/admin/agentkit_bridge/dispatchattempt/add/").status_code == 403
