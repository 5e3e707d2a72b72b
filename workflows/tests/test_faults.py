"""The engine's fault handling: each test here failed on the engine before the dispatch outbox (see docs/engine.md).

1. a dispatch is never lost between the commit and the broker; 2. a stale relay message POSTs nothing;
3. an idle before the agent's active is no result (test_progress.py); 4. a task AgentKit accepted but never
delivered goes to another agent; 5. many overdue runs are handled in one batch; 6. agents are released by key.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agentkit_bridge import relay
from agentkit_bridge.dispatch import relay_request as relay_request_on_celery  # before the test seams patch it
from agentkit_bridge.models import DispatchOutbox
from lifecycle.models import Agent
from opscore_project.observability.models import OperationEvent
from workflows import services
from workflows.models import TaskRun
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db

RUN = "http://agentkit.test/v1/agents/{}/run"
ACCEPTED = {"status": "success", "message": "Task accepted", "data": {"dispatch_status": "scheduled"}}


@pytest.fixture
def agentkit(settings):
    import responses

    settings.AGENTKIT_API_URL = "http://agentkit.test"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_a_dispatch_survives_a_broker_outage_and_is_sent_when_it_is_back(define, make_agent, agentkit, monkeypatch):
    make_agent("a1", ["c"])
    agentkit.post(RUN.format("a1"), json=ACCEPTED, status=202)

    def broker_down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr("celery.current_app.send_task", broker_down)
    session, _ = services.session_start(definition=define(linear("c")))
    services.engine_drain(relay=relay_on_celery)  # the relay message cannot be queued
    run = TaskRun.objects.get(session=session)
    assert run.status == "dispatched"
    assert DispatchOutbox.objects.filter(dispatch_ref=run.dispatch_ref).exists()  # the intent is durable
    assert len(agentkit.calls) == 0

    monkeypatch.undo()  # the broker is back: the next tick finds the unsent dispatch and relays it
    sent: list[list[str]] = []
    services.engine_drain(now=timezone.now() + timedelta(seconds=2), relay=sent.append)
    assert sent == [[run.dispatch_ref]]
    assert relay.dispatches_relay(refs=sent[0]).accepted == 1
    assert len(agentkit.calls) == 1 and not DispatchOutbox.objects.exists()


def relay_on_celery(refs: list[str]) -> None:
    assert relay_request_on_celery(refs) is False  # reported, not raised: the rows stay in the outbox


def test_a_dispatch_and_its_outbox_row_commit_or_roll_back_together(define, make_agent, monkeypatch):
    make_agent("a1", ["c"])
    session, _ = services.session_start(definition=define(linear("c")))

    def crash() -> None:
        raise RuntimeError("process died mid-step")

    monkeypatch.setattr("workflows.engine.oplog.EventBuffer.flush", lambda self: crash())
    with pytest.raises(RuntimeError):
        services.engine_step()
    assert TaskRun.objects.get(session=session).status == "pending"
    assert not DispatchOutbox.objects.exists()
    assert Agent.objects.get(agent_id="a1").assigned_task == ""


def test_a_stale_relay_message_posts_nothing_after_the_run_was_cancelled(define, make_agent, agentkit):
    make_agent("a1", ["c"])
    agentkit.post(RUN.format("a1"), json=ACCEPTED, status=202)
    session, _ = services.session_start(definition=define(linear("c")))
    [step] = services.engine_drain(relay=lambda refs: None)[:1]
    services.session_cancel(session_id=session.pk)
    report = relay.dispatches_relay(refs=step.dispatched)  # e.g. redelivered by the broker an hour later
    assert report.sent == 0 and report.stale == step.dispatched
    assert len(agentkit.calls) == 0
    event = OperationEvent.objects.get(event_type="task.dispatch_stale")
    assert event.task_id == step.dispatched[0]


def test_a_stale_relay_message_posts_nothing_after_the_run_was_sent_elsewhere(define, make_agent, agentkit):
    make_agent("slow", ["c"], last_assigned=None)
    make_agent("other", ["c"], last_assigned=timezone.now())
    session, _ = services.session_start(definition=define(linear("c", startTimeoutSeconds=5)))
    services.engine_drain(relay=lambda refs: None)
    run = TaskRun.objects.get(session=session)
    first_ref = run.dispatch_ref
    services.engine_drain(now=run.start_deadline + timedelta(seconds=1), relay=lambda refs: None)
    run.refresh_from_db()
    assert run.dispatch_ref != first_ref and run.agent.agent_id == "other"
    assert relay.dispatches_relay(refs=[first_ref]).stale == [first_ref]
    assert len(agentkit.calls) == 0


def test_a_task_never_started_goes_to_another_agent_and_the_first_is_flagged(
    define, make_agent, sent, operator_api_client
):
    make_agent("deaf", ["c"], last_assigned=None)
    make_agent("good", ["c"], last_assigned=timezone.now())
    session, _ = services.session_start(definition=define(linear("c", startTimeoutSeconds=30, maxRetries=0)))
    services.engine_drain()
    run = TaskRun.objects.get(session=session)
    assert run.agent.agent_id == "deaf"
    services.engine_drain(now=run.start_deadline - timedelta(seconds=1))
    run.refresh_from_db()
    assert run.status == "dispatched"  # not yet
    services.engine_drain(now=run.start_deadline + timedelta(seconds=1))
    run.refresh_from_db()
    assert run.status == "dispatched" and run.agent.agent_id == "good" and run.attempt == 1
    assert run.redeliveries == 1 and run.try_number == 1  # no retry used up
    deaf = Agent.objects.get(agent_id="deaf")
    assert deaf.delivery_failures == 1 and deaf.last_delivery_failure_at is not None and deaf.assigned_task == ""
    event = OperationEvent.objects.get(event_type="task.delivery_failed")
    assert "did not start the task within 30s" in event.message and event.agent_id == "deaf"
    assert [c["agent_id"] for c in sent.calls] == ["deaf", "good"]
    shown = operator_api_client.get("/v1/opscore/agents/deaf").json()
    assert shown["deliveryFailures"] == 1 and shown["lastDeliveryFailureAt"]


def test_a_task_no_agent_starts_fails_after_the_redeliveries(define, make_agent, sent, settings):
    settings.OPSCORE_TASK_MAX_REDELIVERIES = 1
    make_agent("deaf", ["c"])
    session, _ = services.session_start(definition=define(linear("c", startTimeoutSeconds=10)))
    services.engine_drain()
    for _ in range(2):
        run = TaskRun.objects.get(session=session)
        services.engine_drain(now=run.start_deadline + timedelta(seconds=1))
    session.refresh_from_db()
    assert session.status == "failed" and "Delivery failed" in session.error
    assert Agent.objects.get(agent_id="deaf").delivery_failures == 2


def test_many_overdue_runs_are_timed_out_in_one_batch(define, make_agent, sent):
    definition = define(linear("c", timeoutSeconds=5))
    for i in range(40):
        make_agent(f"a{i}", ["c"])
        services.session_start(definition=definition)
    services.engine_drain()
    assert TaskRun.objects.filter(status="dispatched").count() == 40
    later = timezone.now() + timedelta(seconds=10)
    with CaptureQueriesContext(connection) as queries:
        result = services.engine_step(now=later)
    assert result.deadlines == 40
    assert TaskRun.objects.filter(status="timed_out").count() == 40
    assert len(queries) <= 25  # one batch, not one dispatch pass per timed-out run


def test_a_finished_run_frees_its_agent_by_primary_key(define, make_agent, sent, report):
    make_agent("a1", ["c"])
    session, _ = services.session_start(definition=define(linear("c")))
    services.engine_drain()
    report("a1", "active")
    from lifecycle.services import agent_state_report

    agent_state_report(agent_id="a1", state="idle", details={}, reported_at=timezone.now() + timedelta(seconds=1))
    with CaptureQueriesContext(connection) as queries:
        services.engine_step()
    assert TaskRun.objects.get(session=session).status == "completed"
    # (statements bound on the server, such as the bulk ones, are captured without their text)
    statements = [q["sql"] for q in queries if q["sql"]]
    releases = [sql for sql in statements if sql.startswith('UPDATE "lifecycle_agent" SET "assigned_task"')]
    assert releases and all('"lifecycle_agent"."id" IN' in sql for sql in releases)
