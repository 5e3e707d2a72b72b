"""Operator controls in the engine: workflow pause, maintenance mode, concurrency limits, why a task waits."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from opscore_project.errors import Conflict
from opscore_project.observability.models import OperationEvent
from workflows import control_selectors, selectors, services
from workflows.engine import controls
from workflows.models import TaskRun, WorkflowSession
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db


def single(cap: str, wf_id: str, **policy):
    return {"id": wf_id, "tasks": [{"taskId": "only", "agentCapability": cap, **policy}]}


def finish(report, agent_id: str):
    report(agent_id, "active")
    report(agent_id, "idle", {"ok": True})


def reasons_of(session) -> list:
    return [task["waitingReason"] for task in selectors.session_detail(session)["tasks"]]


# --- workflow pause --------------------------------------------------------------------------------------------


def test_a_paused_workflow_keeps_new_sessions_pending_until_resumed(define, start, make_agent, sent):
    make_agent("a1", ["c"])
    definition = define(single("c", "wf"))
    controls.workflow_pause(workflow_id="wf")
    session = start(definition)
    assert session.status == "pending" and sent.calls == []
    assert reasons_of(session) == ["workflow paused"]
    controls.workflow_resume(workflow_id="wf")
    services.engine_drain()
    session.refresh_from_db()
    assert session.status == "running" and len(sent.calls) == 1
    assert reasons_of(session) == [None]
    kinds = set(OperationEvent.objects.values_list("event_type", flat=True))
    assert {"workflow.paused", "workflow.resumed"} <= kinds


def test_a_pause_covers_every_version_and_lets_other_workflows_run(define, start, make_agent, sent):
    make_agent("a1", ["c"])
    v1 = define(single("c", "wf"))
    v2 = define({**single("c", "wf"), "version": "2.0"})
    other = define(single("c", "other"))
    controls.workflow_pause(workflow_id="wf")
    held = [start(v1), start(v2)]
    running = start(other)
    assert [s.status for s in held] == ["pending", "pending"]
    assert running.status == "running" and len(sent.calls) == 1


def test_running_sessions_of_a_paused_workflow_finish(define, start, make_agent, report, sent):
    make_agent("a1", ["c"])
    session = start(define(linear("c", "c")))
    assert session.status == "running"
    controls.workflow_pause(workflow_id="wf")
    finish(report, "a1")  # s1 done: s2 of the running session is still dispatched
    assert len(sent.calls) == 2
    finish(report, "a1")
    session.refresh_from_db()
    assert session.status == "completed"


def test_reject_when_paused_refuses_new_sessions(define, start, make_agent):
    definition = define(single("c", "wf"))
    controls.workflow_pause(workflow_id="wf", reject_when_paused=True)
    with pytest.raises(Conflict):
        services.session_start(definition=definition)
    assert not WorkflowSession.objects.exists()


def test_a_schedule_tick_of_a_workflow_refusing_sessions_is_skipped(define):
    from workflows.models import WorkflowSchedule

    define(single("c", "wf"))
    schedule = services.workflow_schedule_save(
        schedule=WorkflowSchedule(name="s", workflow_id="wf", interval_seconds=60, allow_overlap=True)
    )
    controls.workflow_pause(workflow_id="wf", reject_when_paused=True)
    outcome = services.workflow_schedule_run(schedule_id=schedule.pk)
    assert outcome.session is None and not WorkflowSession.objects.exists()
    assert OperationEvent.objects.filter(event_type="schedule.skipped", context__reason="workflow paused").exists()
    controls.workflow_pause(workflow_id="wf")  # a plain pause: the tick's session waits
    assert services.workflow_schedule_run(schedule_id=schedule.pk).session.status == "pending"


def test_pausing_an_unknown_workflow_is_not_found():
    from opscore_project.errors import NotFound

    with pytest.raises(NotFound):
        controls.workflow_pause(workflow_id="nope")


def test_a_paused_workflows_waiting_runs_do_not_hit_their_queue_timeout(define, start, make_agent, sent):
    definition = define(single("c", "wf", queueTimeoutSeconds=5))
    paused_at = timezone.now()
    controls.workflow_pause(workflow_id="wf", now=paused_at)
    session = start(definition)
    later = paused_at + timedelta(seconds=60)
    services.engine_step(now=later)
    run = TaskRun.objects.get(session=session)
    assert run.status == "pending"
    before = run.queue_deadline
    controls.workflow_resume(workflow_id="wf", now=later)
    run.refresh_from_db()
    assert run.queue_deadline == before + timedelta(seconds=60)
    make_agent("a1", ["c"])
    services.engine_step(now=later + timedelta(seconds=1))
    run.refresh_from_db()
    assert run.status == "dispatched"


# --- maintenance mode ------------------------------------------------------------------------------------------


def test_maintenance_mode_stops_dispatch_but_applies_reports(define, start, make_agent, report, sent):
    make_agent("a1", ["c"])
    make_agent("a2", ["c"])
    first = start(define(single("c", "wf")))
    assert first.status == "running"
    controls.dispatch_pause(reason="database upgrade")
    second = start(define(single("c", "other")))
    assert second.status == "pending" and len(sent.calls) == 1
    assert reasons_of(second) == ["dispatch paused"]
    finish(report, sent.calls[0]["agent_id"])  # the report is applied while paused
    first.refresh_from_db()
    assert first.status == "completed" and len(sent.calls) == 1
    controls.dispatch_resume()
    services.engine_drain()
    second.refresh_from_db()
    assert second.status == "running" and len(sent.calls) == 2
    kinds = set(OperationEvent.objects.values_list("event_type", flat=True))
    assert {"dispatch.paused", "dispatch.resumed"} <= kinds


def test_maintenance_mode_suspends_queue_timeouts(define, start):
    session = start(define(single("c", "wf", queueTimeoutSeconds=5)))
    now = timezone.now()
    controls.dispatch_pause(now=now)
    services.engine_step(now=now + timedelta(seconds=30))
    assert TaskRun.objects.get(session=session).status == "pending"
    controls.dispatch_resume(now=now + timedelta(seconds=30))
    services.engine_step(now=now + timedelta(seconds=31))
    assert TaskRun.objects.get(session=session).status == "pending"  # 30 s of pause added to its 5 s
    services.engine_step(now=now + timedelta(seconds=40))
    assert TaskRun.objects.get(session=session).status == "failed"


# --- limits ----------------------------------------------------------------------------------------------------


def test_a_capability_limit_caps_tasks_in_flight(define, start, make_agent, report, sent):
    for index in range(4):
        make_agent(f"a{index}", ["c"])
    controls.capability_limit_set(capability="c", max_in_flight=2)
    definition = define(single("c", "wf"))
    sessions = [start(definition) for _ in range(4)]
    assert len(sent.calls) == 2
    waiting = [s for s in sessions if WorkflowSession.objects.get(pk=s.pk).status == "pending"]
    assert [reasons_of(s) for s in waiting] == [["limit c: 2/2"], ["limit c: 2/2"]]
    finish(report, sent.calls[0]["agent_id"])
    assert len(sent.calls) == 3  # one slot freed, one more dispatched
    assert TaskRun.objects.filter(status__in=["dispatched", "running"]).count() == 2


def test_a_held_run_does_not_block_lower_priority_work(define, start, make_agent, sent):
    make_agent("a1", ["c", "d"])
    make_agent("a2", ["c", "d"])
    controls.capability_limit_set(capability="c", max_in_flight=1)
    urgent = define(single("c", "urgent", priority=10))
    start(urgent)
    start(urgent)  # held: the limit of c is full
    plain = start(define(single("d", "plain")))
    assert plain.status == "running"
    assert sorted(call["task_name"] for call in sent.calls) == ["c", "d"]


def test_a_workflow_limit_caps_running_sessions(define, start, make_agent, report, sent):
    for index in range(3):
        make_agent(f"a{index}", ["c"])
    definition = define(linear("c", "c"))
    controls.workflow_limits_set(workflow_id="wf", max_running_sessions=1)
    first, second = start(definition), start(definition)
    assert (first.status, second.status) == ("running", "pending")
    assert reasons_of(second) == ["limit workflow wf: 1/1"]
    finish(report, sent.calls[0]["agent_id"])  # the running session's next task still goes out
    second.refresh_from_db()
    assert len(sent.calls) == 2 and second.status == "pending"
    finish(report, sent.calls[1]["agent_id"])  # first completes: second may start
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "completed" and second.status == "running"


def test_a_retried_session_waits_when_its_workflow_is_at_its_limit(define, start, make_agent, report, sent):
    make_agent("a1", ["c"])
    definition = define(single("c", "wf"))
    failed = start(definition)
    report("a1", "active")
    report("a1", "error", {"message": "boom"})
    report("a1", "idle")
    failed.refresh_from_db()
    assert failed.status == "failed"
    controls.workflow_limits_set(workflow_id="wf", max_running_sessions=1)
    running = start(definition)
    assert running.status == "running"
    services.session_retry(session_id=failed.pk)
    failed.refresh_from_db()
    assert failed.status == "pending"
    assert reasons_of(failed) == [None, "limit workflow wf: 1/1"]  # the failed attempt, then the new one
    finish(report, "a1")  # the running one completes: the retried one starts
    failed.refresh_from_db()
    assert failed.status == "running"


def test_limits_are_removable(define, start, make_agent, sent):
    make_agent("a1", ["c"])
    make_agent("a2", ["c"])
    controls.capability_limit_set(capability="c", max_in_flight=1)
    definition = define(single("c", "wf"))
    start(definition)
    start(definition)
    assert len(sent.calls) == 1
    controls.capability_limit_delete(capability="c")
    services.engine_drain()
    assert len(sent.calls) == 2


def test_a_waiting_run_without_agent_says_so(define, start):
    session = start(define(single("c", "wf")))
    assert reasons_of(session) == ["no eligible agent"]
    status = control_selectors.dispatch_status()
    assert status["waitingTasks"] == 1 and status["paused"] is False


# --- cost ------------------------------------------------------------------------------------------------------


def _step_statements(define, start, make_agent, clock, *, configure=None) -> int:
    """Statements of one engine step that completes 10 runs and dispatches their next tasks."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from lifecycle.services import agent_state_report

    agents = [make_agent(f"a{i}", ["c1", "c2"]) for i in range(10)]
    definition = define(linear("c1", "c2"))
    if configure:
        configure()
    for _ in agents:
        start(definition)
    for agent in agents:
        agent_state_report(agent_id=agent.agent_id, state="active", details={}, reported_at=clock.tick())
    services.engine_drain()
    for agent in agents:
        agent_state_report(agent_id=agent.agent_id, state="idle", details={"result": 1}, reported_at=clock.tick())
    with CaptureQueriesContext(connection) as queries:
        result = services.engine_step(now=timezone.now())  # an explicit time: deadlines are always read
    assert len(result.dispatched) == 10
    return len(queries)


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="statement counts of Postgres")
def test_limits_that_do_not_bind_cost_two_statements_per_step(define, start, make_agent, clock, sent):
    plain = _step_statements(define, start, make_agent, clock)
    WorkflowSession.objects.all().delete()
    from lifecycle.models import Agent

    Agent.objects.all().delete()

    def configure() -> None:
        controls.capability_limit_set(capability="c2", max_in_flight=1000)
        controls.workflow_limits_set(workflow_id="wf", max_running_sessions=1000)

    limited = _step_statements(define, start, make_agent, clock, configure=configure)
    assert limited == plain + 2  # the limits lock and one usage read
