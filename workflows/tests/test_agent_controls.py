"""Operator controls in the engine: drained and quarantined agents get no new task; the circuit breaker opens after
a run of failures, allows one trial task after its cool-down, and closes or reopens (doubled) on its outcome."""

from datetime import timedelta

import pytest
from django.utils import timezone

from lifecycle import controls
from lifecycle.models import Agent
from opscore_project.observability.models import OperationEvent
from workflows import services
from workflows.models import TaskRun
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db


@pytest.fixture
def breaker(settings):
    settings.OPSCORE_QUARANTINE_AFTER_FAILURES = 3
    settings.OPSCORE_QUARANTINE_COOLDOWN_SECONDS = 60
    settings.OPSCORE_QUARANTINE_MAX_COOLDOWN_SECONDS = 200
    return settings


def fail_current_task(report, agent_id: str) -> None:
    report(agent_id, "active")
    report(agent_id, "error", {"error_code": "E", "message": "broken"})
    report(agent_id, "idle")  # ready for more: only idle agents get tasks


def events_of(agent_id: str, event_type: str) -> list[OperationEvent]:
    return list(OperationEvent.objects.filter(agent_id=agent_id, event_type=event_type).order_by("id"))


def test_a_drained_agent_gets_no_new_task_while_another_does(define, start, make_agent, sent):
    make_agent("drained", ["c"])
    make_agent("other", ["c"], last_assigned=timezone.now())  # would be chosen second otherwise
    controls.agent_drain(agent_id="drained")
    definition = define(linear("c"))
    start(definition)
    start(definition)
    assert [call["agent_id"] for call in sent.calls] == ["other"]
    assert len(events_of("drained", "agent.drained")) == 1


def test_a_drained_agent_finishes_its_current_task_and_undrain_returns_it(define, start, make_agent, sent, report):
    make_agent("a1", ["c"])
    definition = define(linear("c"))
    first = start(definition)
    controls.agent_drain(agent_id="a1")
    second = start(definition)
    report("a1", "active")
    report("a1", "idle", {"result": {"ok": True}})
    first.refresh_from_db()
    assert first.status == "completed"
    assert TaskRun.objects.get(session=second).status == "pending"  # no new task while drained
    controls.agent_undrain(agent_id="a1")
    services.engine_drain()
    assert TaskRun.objects.get(session=second).status == "dispatched"


def test_a_quarantined_agent_gets_nothing_until_released(define, start, make_agent, sent):
    make_agent("a1", ["c"])
    agent = controls.agent_quarantine(agent_id="a1", reason="flaky disk")
    assert agent.breaker_state == "open" and agent.quarantined_until is None
    session = start(define(linear("c", queueTimeoutSeconds=3600)))
    services.engine_drain(now=timezone.now() + timedelta(seconds=300))  # no cool-down: until released
    assert TaskRun.objects.get(session=session).status == "pending"
    controls.agent_quarantine_release(agent_id="a1")
    services.engine_drain()
    assert TaskRun.objects.get(session=session).status == "dispatched"
    assert [
        e.event_type
        for e in OperationEvent.objects.filter(agent_id="a1", event_type__startswith="agent.q").order_by("id")
    ] == [
        "agent.quarantined",
        "agent.quarantine_released",
    ]


def test_failures_in_a_row_open_the_breaker_and_a_success_resets_the_count(
    breaker, define, start, make_agent, sent, report
):
    make_agent("a1", ["c"])
    definition = define(linear("c"))
    for _ in range(2):
        start(definition)
        fail_current_task(report, "a1")
    start(definition)
    report("a1", "active")
    report("a1", "idle", {"result": 1})
    assert Agent.objects.get(agent_id="a1").consecutive_failures == 0
    for _ in range(3):
        start(definition)
        fail_current_task(report, "a1")
    agent = Agent.objects.get(agent_id="a1")
    assert agent.breaker_state == "open" and agent.consecutive_failures == 3
    assert agent.breaker_cooldown_seconds == 60
    assert timedelta(seconds=55) < agent.quarantined_until - timezone.now() <= timedelta(seconds=60)
    (event,) = events_of("a1", "agent.quarantined")
    assert event.level == "warning" and event.context["consecutiveFailures"] == 3
    waiting = start(definition)
    assert TaskRun.objects.get(session=waiting).status == "pending"


def test_after_the_cool_down_one_trial_task_goes_out_and_its_outcome_decides(
    breaker, define, start, make_agent, sent, report
):
    make_agent("a1", ["c"])
    definition = define(linear("c"))
    for _ in range(3):
        start(definition)
        fail_current_task(report, "a1")
    first, second = start(definition), start(definition)
    later = timezone.now() + timedelta(seconds=61)
    services.engine_drain(now=later)
    runs = {run.session_id: run.status for run in TaskRun.objects.filter(session__in=[first, second])}
    assert sorted(runs.values()) == ["dispatched", "pending"]  # one trial only
    assert Agent.objects.get(agent_id="a1").breaker_state == "half_open"
    assert len(events_of("a1", "agent.quarantine_trial")) == 1

    fail_current_task(report, "a1")  # the trial fails: open again, cool-down doubled
    agent = Agent.objects.get(agent_id="a1")
    assert agent.breaker_state == "open" and agent.breaker_cooldown_seconds == 120
    assert [e.context["reason"] for e in events_of("a1", "agent.quarantined")] == [
        "consecutive failures",
        "trial failed",
    ]

    services.engine_drain(now=timezone.now() + timedelta(seconds=121))
    assert Agent.objects.get(agent_id="a1").breaker_state == "half_open"
    report("a1", "active")
    report("a1", "idle", {"result": "fine"})  # the trial succeeds: closed
    agent = Agent.objects.get(agent_id="a1")
    assert (agent.breaker_state, agent.quarantined_until, agent.consecutive_failures) == ("closed", None, 0)
    assert len(events_of("a1", "agent.quarantine_released")) == 1


def test_the_cool_down_doubles_up_to_its_cap(breaker, define, start, make_agent, sent, report):
    make_agent("a1", ["c"])
    definition = define(linear("c"))
    for _ in range(3):
        start(definition)
        fail_current_task(report, "a1")
    cooldowns = []
    for _ in range(3):
        agent = Agent.objects.get(agent_id="a1")
        start(definition)
        services.engine_drain(now=agent.quarantined_until + timedelta(seconds=1))
        fail_current_task(report, "a1")
        cooldowns.append(Agent.objects.get(agent_id="a1").breaker_cooldown_seconds)
    assert cooldowns == [120, 200, 200]


def test_timeouts_and_undelivered_tasks_count_as_failures(breaker, define, start, make_agent, sent, settings):
    settings.OPSCORE_TASK_MAX_REDELIVERIES = 5
    make_agent("a1", ["c"])
    definition = define(linear("c", timeoutSeconds=5, startTimeoutSeconds=2))
    session = start(definition)
    services.engine_drain(now=timezone.now() + timedelta(seconds=3))  # never started: requeued, counted
    agent = Agent.objects.get(agent_id="a1")
    assert agent.consecutive_failures == 1 and agent.delivery_failures == 1
    assert TaskRun.objects.get(session=session).status in ("pending", "dispatched")


def test_a_breaker_with_threshold_zero_never_opens(define, start, make_agent, sent, report, settings):
    settings.OPSCORE_QUARANTINE_AFTER_FAILURES = 0
    make_agent("a1", ["c"])
    definition = define(linear("c"))
    for _ in range(6):
        start(definition)
        fail_current_task(report, "a1")
    agent = Agent.objects.get(agent_id="a1")
    assert agent.breaker_state == "closed" and agent.consecutive_failures == 6


def test_outcomes_are_recorded_without_a_release_and_a_release_alone_changes_no_count(make_agent, breaker):
    from lifecycle.controls import Outcomes, agents_release

    agent = make_agent("a1", ["c"], assigned_task="run-1")
    now = timezone.now()
    assert agents_release(released=[], outcomes={agent.pk: Outcomes(failures=2, delivery_failures=1)}, now=now) == []
    agent.refresh_from_db()
    assert (agent.consecutive_failures, agent.delivery_failures, agent.assigned_task) == (2, 1, "run-1")
    agents_release(released=[(agent.pk, "other-run")], outcomes={}, now=now)  # not the run it holds: kept
    agents_release(released=[(agent.pk, "run-1")], outcomes={}, now=now)
    agent.refresh_from_db()
    assert (agent.consecutive_failures, agent.assigned_task, agent.breaker_state) == (2, "", "closed")
    (change,) = agents_release(released=[], outcomes={agent.pk: Outcomes.of([True, False, False, False])}, now=now)
    assert (change.agent_id, change.move, change.consecutive_failures, change.cooldown_seconds) == ("a1", "open", 3, 60)
