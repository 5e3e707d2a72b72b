"""Task progress from state reports, failures, timeouts, dispatch outcomes, cancellation and retry."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lifecycle.models import Agent
from workflows import services
from workflows.listeners import on_dispatch_outcomes
from workflows.models import TaskRun
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(not settings.IS_POSTGRES, reason="the Postgres state write and its probes")


def runs(session) -> list[tuple[str, int, str]]:
    return [(r.task_id, r.attempt, r.status) for r in TaskRun.objects.filter(session=session).order_by("created_at")]


def test_a_linear_workflow_completes_with_results_passed_on(define, start, make_agent, sent, report):
    make_agent("a1", ["summarise", "translate"])
    definition = define(
        {
            "id": "chain",
            "tasks": [
                {"taskId": "sum", "agentCapability": "summarise", "parameters": {"text": "{{ payload.text }}"},
                 "nextTaskId": "tr"},
                {"taskId": "tr", "agentCapability": "translate",
                 "parameters": {"text": "{{ tasks.sum.result.summary }}", "n": "{{ payload.n }}"}},
            ],
        }
    )  # fmt: skip
    session = start(definition, payload={"text": "long text", "n": 2})
    assert sent.calls[0]["parameters"] == {"text": "long text"}
    report("a1", "active")
    assert runs(session) == [("sum", 1, "running")]
    report("a1", "idle", {"result": {"summary": "short"}})
    assert sent.calls[1]["parameters"] == {"text": "short", "n": 2}
    report("a1", "active")
    report("a1", "idle", {"translated": "court"})  # no "result" key: the details are the result
    session.refresh_from_db()
    assert session.status == "completed" and session.ended_at is not None
    assert runs(session) == [("sum", 1, "completed"), ("tr", 1, "completed")]
    assert TaskRun.objects.get(session=session, task_id="tr").result == {"translated": "court"}
    assert Agent.objects.get(agent_id="a1").assigned_task == ""


def test_duplicate_and_out_of_order_reports_never_double_complete(define, start, make_agent, sent, report, clock):
    make_agent("a1", ["c"])
    session = start(define(linear("c", "c")))
    active_at = clock.tick()
    report("a1", "active", at=active_at)
    idle_at = clock.tick()
    report("a1", "idle", {"result": {"n": 1}}, at=idle_at)
    second = TaskRun.objects.get(session=session, task_id="s2")
    assert second.status == "dispatched"
    report("a1", "idle", {"result": {"n": 1}}, at=idle_at)  # exact duplicate
    report("a1", "active", at=active_at)  # late, out of order
    second.refresh_from_db()
    assert second.status == "dispatched"
    assert TaskRun.objects.filter(session=session, status="completed").count() == 1
    assert len(sent.calls) == 2


def test_an_idle_sent_before_the_dispatch_is_not_a_result(define, start, make_agent, sent, report):
    make_agent("a1", ["c"])
    session = start(define(linear("c")))
    run = TaskRun.objects.get(session=session)
    report("a1", "idle", {"result": {"stale": True}}, at=run.dispatched_at - timedelta(milliseconds=100))
    assert runs(session) == [("s1", 1, "dispatched")]
    # ...unless the report names the task explicitly
    report("a1", "idle", {"opscore_task_id": str(run.id), "result": {"ok": True}}, at=run.dispatched_at)
    run.refresh_from_db()
    assert run.status == "completed" and run.result == {"ok": True}


def test_an_idle_between_the_dispatch_and_the_active_is_not_a_result(define, start, make_agent, sent, report):
    """A heartbeat (or an agent restart) after the dispatch but before the agent got the task completes nothing."""
    make_agent("a1", ["c"])
    session = start(define(linear("c")))
    report("a1", "idle", {"heartbeat": True})
    assert runs(session) == [("s1", 1, "dispatched")]
    report("a1", "active")
    assert runs(session) == [("s1", 1, "running")]
    report("a1", "idle", {"result": {"done": True}})
    session.refresh_from_db()
    assert session.status == "completed"
    assert TaskRun.objects.get(session=session).result == {"done": True}


def test_an_idle_that_arrives_before_its_active_counts_once_both_are_in(define, start, make_agent, sent, report, clock):
    make_agent("a1", ["c"])
    session = start(define(linear("c")))
    active_at, idle_at = clock.tick(), clock.tick()
    report("a1", "idle", {"result": {"n": 7}}, at=idle_at)  # arrives first
    assert runs(session) == [("s1", 1, "dispatched")]
    report("a1", "active", at=active_at)  # older, arrives second
    session.refresh_from_db()
    assert session.status == "completed"
    assert TaskRun.objects.get(session=session).result == {"n": 7}


@postgres_only
def test_a_report_from_a_free_agent_that_is_not_idle_costs_no_query(make_agent, report, clock):
    make_agent("a1", ["c"])
    from lifecycle.services import _state_report_postgres
    from workflows.listeners import on_state_report

    result = _state_report_postgres("a1", "active", {}, clock.tick(), timezone.now())
    with CaptureQueriesContext(connection) as queries:
        on_state_report(result)
    assert len(queries) == 0


@postgres_only
def test_an_idle_report_costs_no_query_after_the_write(make_agent, clock):
    make_agent("a1", ["c"])
    from lifecycle.services import _state_report_postgres
    from workflows.listeners import on_state_report

    # The engine's part (inbox row, wake-up) is done inside the state write's own statement.
    result = _state_report_postgres("a1", "idle", {}, clock.tick(), timezone.now())
    assert result.probes["engine_inbox"] is True
    with CaptureQueriesContext(connection) as queries:
        on_state_report(result)
    assert len(queries) == 0


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_idle_report_wakes_the_engine_only_while_a_task_waits(define, make_agent, clock):
    """The NOTIFY the engine loops LISTEN for: sent by an idle agent's report while a task waits, not otherwise."""
    import psycopg

    from lifecycle.controls import agent_drain, agent_quarantine, agent_quarantine_release, agent_undrain
    from lifecycle.services import agent_state_report
    from workflows.engine.reports import ENGINE_CHANNEL

    make_agent("busy", ["c"], state="active")
    db = settings.DATABASES["default"]
    with psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=True) as conn:
        conn.execute(f"LISTEN {ENGINE_CHANNEL}")
        agent_state_report(agent_id="busy", state="idle", details={}, reported_at=clock.tick())
        assert list(conn.notifies(timeout=0.5, stop_after=1)) == []  # nothing waits: no wake-up
        services.session_start(definition=define(linear("c")))
        list(conn.notifies(timeout=0.5, stop_after=1))  # the session start's own wake-up
        agent_state_report(agent_id="busy", state="active", details={}, reported_at=clock.tick())
        agent_state_report(agent_id="busy", state="idle", details={}, reported_at=clock.tick())
        assert [n.channel for n in conn.notifies(timeout=2, stop_after=1)] == [ENGINE_CHANNEL]
        # An agent the dispatch pass would not use (drained, quarantined) wakes nobody.
        for take_out, put_back in ((agent_drain, agent_undrain), (agent_quarantine, agent_quarantine_release)):
            take_out(agent_id="busy")
            list(conn.notifies(timeout=0.5, stop_after=10))  # the control's own wake-up, if any
            agent_state_report(agent_id="busy", state="idle", details={}, reported_at=clock.tick())
            assert list(conn.notifies(timeout=0.5, stop_after=1)) == []
            put_back(agent_id="busy")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_runs_active_report_is_stored_without_waking_the_engine_and_its_idle_wakes_it(define, make_agent, clock):
    """An ``active`` only marks the run running: the next step applies it (one step per task at low load)."""
    import psycopg

    from lifecycle.services import agent_state_report
    from workflows.engine.reports import ENGINE_CHANNEL
    from workflows.models import TaskReport

    make_agent("a1", ["c"])
    services.session_start(definition=define(linear("c")))
    services.engine_drain(relay=lambda refs: None)
    db = settings.DATABASES["default"]
    with psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=True) as conn:
        conn.execute(f"LISTEN {ENGINE_CHANNEL}")
        agent_state_report(agent_id="a1", state="active", details={}, reported_at=clock.tick())
        assert list(conn.notifies(timeout=0.5, stop_after=1)) == []
        assert TaskReport.objects.filter(state="active").count() == 1  # stored for the next step
        agent_state_report(agent_id="a1", state="idle", details={"result": 1}, reported_at=clock.tick())
        assert [n.channel for n in conn.notifies(timeout=2, stop_after=1)] == [ENGINE_CHANNEL]
    services.engine_drain(relay=lambda refs: None)
    assert TaskRun.objects.get().status == "completed"


@postgres_only  # SQLite: Django's bulk operations, one statement per batch of rows
@pytest.mark.parametrize("sessions", [1, 20])
def test_an_engine_step_costs_the_same_statements_for_one_completion_as_for_twenty(
    define, start, make_agent, sent, clock, sessions, django_assert_max_num_queries
):
    """Transitions are set-based: a step that completes N runs and dispatches their next steps issues a fixed
    number of statements, whatever N is."""
    from lifecycle.services import agent_state_report

    agents = [make_agent(f"a{i}", ["c1", "c2"]) for i in range(sessions)]
    definition = define(linear("c1", "c2"))
    for _ in agents:
        start(definition)
    for agent in agents:
        agent_state_report(agent_id=agent.agent_id, state="active", details={}, reported_at=clock.tick())
    services.engine_drain()
    for agent in agents:
        agent_state_report(agent_id=agent.agent_id, state="idle", details={"result": 1}, reported_at=clock.tick())
    with django_assert_max_num_queries(18):
        result = services.engine_step()
    assert (result.reports, len(result.dispatched)) == (sessions, sessions)
    assert TaskRun.objects.filter(status="completed").count() == sessions
    assert TaskRun.objects.filter(status="dispatched", task_id="s2").count() == sessions


def test_an_error_is_retried_then_succeeds(define, start, make_agent, sent, report):
    make_agent("a1", ["c"])
    session = start(define(linear("c", maxRetries=1, retryBackoffSeconds=0)))
    report("a1", "active")
    report("a1", "error", {"error_code": "E42", "message": "model overloaded"})
    failed = TaskRun.objects.get(session=session, attempt=1)
    assert failed.status == "failed" and failed.error == "Agent reported error: E42: model overloaded"
    report("a1", "idle")  # the agent recovers: the retry goes to it
    assert runs(session) == [("s1", 1, "failed"), ("s1", 2, "dispatched")]
    report("a1", "active")
    report("a1", "idle", {"result": {"ok": 1}})
    session.refresh_from_db()
    assert session.status == "completed"


def test_exhausted_retries_run_the_fallback_and_the_session_continues(define, start, make_agent, sent, report):
    make_agent("a1", ["c", "fb"])
    definition = define(
        {
            "id": "fallback",
            "tasks": [
                {"taskId": "main", "agentCapability": "c", "maxRetries": 0, "fallbackTaskId": "plan_b",
                 "nextTaskId": "after"},
                {"taskId": "plan_b", "agentCapability": "fb"},
                {"taskId": "after", "agentCapability": "c", "parameters": {"from": "{{ tasks.main.result.v }}"}},
            ],
        }
    )  # fmt: skip
    session = start(definition)
    report("a1", "active")
    report("a1", "error", {"message": "nope"})
    report("a1", "idle")
    assert runs(session)[-1] == ("plan_b", 1, "dispatched")
    assert TaskRun.objects.get(task_id="plan_b", session=session).fallback_for == "main"
    report("a1", "active")
    report("a1", "idle", {"result": {"v": "fallback value"}})
    assert sent.calls[-1]["parameters"] == {"from": "fallback value"}
    report("a1", "active")
    report("a1", "idle", {"result": {}})
    session.refresh_from_db()
    assert session.status == "completed"


def test_exhausted_retries_without_fallback_fail_the_session_and_cancel_the_rest(
    define, start, make_agent, sent, report
):
    make_agent("a1", ["c"])
    make_agent("a2", ["d"])
    definition = define(
        {"id": "par", "tasks": [{"taskId": "x", "agentCapability": "c"}, {"taskId": "y", "agentCapability": "d"}]}
    )
    session = start(definition)
    assert len(sent.calls) == 2
    report("a1", "active")
    report("a1", "error", {"error_code": "BAD", "message": "broken"})
    session.refresh_from_db()
    assert session.status == "failed"
    assert session.error == "Task x failed: Agent reported error: BAD: broken"
    assert dict((t, s) for t, _, s in runs(session)) == {"x": "failed", "y": "cancelled"}
    assert Agent.objects.get(agent_id="a2").assigned_task == ""
    # a late report for the cancelled run is ignored
    report("a2", "active")
    report("a2", "idle", {"result": {}})
    assert dict((t, s) for t, _, s in runs(session))["y"] == "cancelled"


def test_a_silent_agent_times_out_and_the_task_is_retried(define, start, make_agent, sent):
    make_agent("a1", ["c"])
    session = start(define(linear("c", maxRetries=1, retryBackoffSeconds=0, timeoutSeconds=5)))
    run = TaskRun.objects.get(session=session)
    services.engine_drain(now=run.timeout_at - timedelta(seconds=1))
    run.refresh_from_db()
    assert run.status == "dispatched"
    result = services.engine_step(now=run.timeout_at + timedelta(seconds=1))
    run.refresh_from_db()
    assert run.status == "timed_out" and "Timed out" in run.error
    assert result.deadlines == 1
    # the agent was released and is still idle in its last report: the retry is dispatched to it
    assert runs(session) == [("s1", 1, "timed_out"), ("s1", 2, "dispatched")]


def test_a_queue_timeout_fails_the_session_with_the_reason(define, start, sent):
    session = start(define(linear("rare", queueTimeoutSeconds=30, maxRetries=3)))
    run = TaskRun.objects.get(session=session)
    services.engine_drain(now=run.queue_deadline + timedelta(seconds=1))
    session.refresh_from_db()
    assert session.status == "failed" and "Queue timeout" in session.error
    assert runs(session) == [("s1", 1, "failed")]


@dataclass
class Outcome:
    dispatch_ref: str
    agent_id: str
    accepted: bool
    error_kind: str = ""
    error: str = ""
    status_code: int | None = None
    attempts: int = 1
    finished_at: datetime = None


def test_a_run_gets_its_acceptance_time_and_a_refused_dispatch_fails_the_attempt(
    define, start, make_agent, sent, report
):
    from agentkit_bridge.models import DispatchAttempt

    make_agent("a1", ["c"])
    session = start(define(linear("c", "c")))
    run = TaskRun.objects.get(session=session)
    now = timezone.now()
    DispatchAttempt.objects.create(
        dispatch_ref=run.dispatch_ref, agent_id="a1", attempt=1, outcome="accepted", created_at=now
    )
    report("a1", "active")  # the engine records when AgentKit accepted the run it moves on
    run.refresh_from_db()
    assert run.status == "running" and run.accepted_at == now
    report("a1", "idle")
    other = start(define(linear("c", wf_id="w2")))
    Agent.objects.filter(agent_id="a1").update(assigned_task="")
    services.engine_drain()
    run2 = TaskRun.objects.get(session=other)
    on_dispatch_outcomes([Outcome(run2.dispatch_ref, "a1", False, "unreachable", "connection refused", None, 4, now)])
    services.engine_drain()
    other.refresh_from_db()
    assert other.status == "failed"
    assert "Dispatch failed after 4 attempt(s): unreachable: connection refused" in other.error


def test_an_agent_unknown_to_agentkit_sends_the_run_to_another_agent_without_counting_a_failure(
    define, start, make_agent, sent
):
    gone = make_agent("gone", ["c"], last_assigned=None)
    make_agent("other", ["c"], last_assigned=timezone.now())
    session = start(define(linear("c")))
    run = TaskRun.objects.get(session=session)
    assert run.agent == gone
    Agent.objects.filter(pk=gone.pk).update(deregistered_at=timezone.now())  # the bridge marks it gone
    gone_outcome = Outcome(run.dispatch_ref, "gone", False, "agent_unknown", "404", 404, 1, timezone.now())
    on_dispatch_outcomes([gone_outcome])
    services.engine_drain()
    run.refresh_from_db()
    assert run.status == "dispatched" and run.agent.agent_id == "other" and run.attempt == 1
    assert Agent.objects.get(pk=gone.pk).assigned_task == ""
    # a new dispatch ref (the bridge never re-sends a finished one); the old outcome, announced again, is ignored
    assert [c["dispatch_ref"] for c in sent.calls] == [f"{run.id}:1", f"{run.id}:2"]
    assert {c["task_run_id"] for c in sent.calls} == {str(run.id)}
    on_dispatch_outcomes([gone_outcome])
    services.engine_drain()
    run.refresh_from_db()
    assert run.status == "dispatched" and run.agent.agent_id == "other"


def test_cancel_stops_dispatch_and_frees_agents(define, start, make_agent, sent, report):
    make_agent("a1", ["c"])
    session = start(define(linear("c", "c")))
    report("a1", "active")
    services.session_cancel(session_id=session.id)
    session.refresh_from_db()
    assert session.status == "cancelled"
    assert runs(session) == [("s1", 1, "cancelled")]
    assert Agent.objects.get(agent_id="a1").assigned_task == ""
    report("a1", "idle", {"result": {}})
    assert runs(session) == [("s1", 1, "cancelled")]
    from opscore_project.errors import Conflict

    with pytest.raises(Conflict):
        services.session_cancel(session_id=session.id)


def test_retry_reruns_only_the_failed_step(define, start, make_agent, sent, report, django_capture_on_commit_callbacks):
    make_agent("a1", ["c"])
    session = start(define(linear("c", "c", "c")))
    report("a1", "active")
    report("a1", "idle", {"result": {"first": 1}})
    report("a1", "active")
    report("a1", "error", {"message": "x"})
    session.refresh_from_db()
    assert session.status == "failed"
    from opscore_project.errors import Conflict

    with django_capture_on_commit_callbacks(execute=True):
        services.session_retry(session_id=session.id)
    session.refresh_from_db()
    assert session.status == "running" and session.error == ""
    assert runs(session) == [("s1", 1, "completed"), ("s2", 1, "failed"), ("s2", 2, "pending")]
    report("a1", "idle")
    report("a1", "active")
    report("a1", "idle", {"result": {}})
    report("a1", "active")
    report("a1", "idle", {"result": {}})
    session.refresh_from_db()
    assert session.status == "completed"
    assert [r[0] for r in runs(session)].count("s1") == 1
    with pytest.raises(Conflict):
        services.session_retry(session_id=session.id)


def test_runs_still_waiting_when_the_session_fails_are_skipped(define, start, make_agent, sent, report):
    make_agent("a1", ["c"])
    definition = define(
        {"id": "skip", "tasks": [{"taskId": "x", "agentCapability": "c"}, {"taskId": "y", "agentCapability": "rare"}]}
    )
    session = start(definition)
    report("a1", "active")
    report("a1", "error", {})
    assert dict((t, s) for t, _, s in runs(session)) == {"x": "failed", "y": "skipped"}
    with pytest.raises(Exception):  # noqa: B017 - Conflict: nothing to cancel
        services.session_cancel(session_id=session.id)


def test_a_foreign_task_id_in_an_idle_report_does_not_block_dispatch(define, start, make_agent, sent, report):
    make_agent("a1", ["c"], state="active")
    session = start(define(linear("c")))
    report("a1", "idle", {"taskId": "agent-side-id-7"})
    assert runs(session) == [("s1", 1, "dispatched")]
