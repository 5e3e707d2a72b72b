"""Scheduling decisions: which waiting run goes to which agent."""

from datetime import timedelta

import pytest
from django.utils import timezone

from workflows import services
from workflows.models import TaskRun
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db


def single(cap: str, wf_id: str, **policy):
    return {"id": wf_id, "tasks": [{"taskId": "only", "agentCapability": cap, **policy}]}


def test_a_task_goes_to_a_free_idle_capable_agent(define, start, make_agent, sent):
    agent = make_agent("a1", ["summarise"])
    session = start(define(linear("summarise")), payload={"text": "x"})
    run = TaskRun.objects.get(session=session)
    assert run.status == "dispatched" and run.agent == agent
    assert sent.calls == [
        {"dispatch_ref": f"{run.id}:1", "task_run_id": str(run.id), "agent_id": "a1", "task_name": "summarise",
         "parameters": {}, "session_id": str(session.id)}
    ]  # fmt: skip
    agent.refresh_from_db()
    assert agent.assigned_task == str(run.id)
    session.refresh_from_db()
    assert session.status == "running" and session.started_at is not None
    assert run.timeout_at is not None and run.dispatched_at is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"state": "active"},
        {"state": "error"},
        {"deregistered": True},
        {"assigned_task": "someone-else"},
        {"last_seen": timezone.now() - timedelta(hours=2)},
        {"known": False},  # capability routing uses only agents with known capabilities
        {"capabilities": ["translate"]},
    ],
)
def test_unsuitable_agents_are_not_chosen(define, start, make_agent, sent, kwargs):
    make_agent("a1", kwargs.pop("capabilities", ["summarise"]), **kwargs)
    session = start(define(linear("summarise")))
    assert sent.calls == []
    assert TaskRun.objects.get(session=session).status == "pending"
    session.refresh_from_db()
    assert session.status == "pending"


def test_the_least_recently_assigned_agent_is_chosen(define, start, make_agent, sent):
    now = timezone.now()
    make_agent("recent", ["c"], last_assigned=now - timedelta(seconds=1))
    make_agent("older", ["c"], last_assigned=now - timedelta(minutes=5))
    make_agent("never", ["c"])
    definition = define(linear("c"))
    start(definition)
    start(definition)
    start(definition)
    assert [c["agent_id"] for c in sent.calls] == ["never", "older", "recent"]


def test_higher_priority_then_older_runs_go_first(define, start, make_agent, sent, report):
    low = start(define(single("c", "low", priority=1)))
    high = start(define(single("c", "high", priority=9)))
    old_mid = start(define(single("c", "mid1", priority=5)))
    new_mid = start(define(single("c", "mid2", priority=5)))
    assert sent.calls == []
    agent = make_agent("a1", ["c"], state="active")
    order = []
    report("a1", "idle")  # the event-driven path: the idle agent gets the best waiting run
    for _ in range(4):
        run = TaskRun.objects.get(agent=agent, status="dispatched")
        order.append(run.session_id)
        report("a1", "active")
        report("a1", "idle", {"result": {}})  # completes, and the freed agent gets the next run
    assert order == [high.id, old_mid.id, new_mid.id, low.id]


def test_an_agent_known_only_from_reports_is_capable_when_the_workflow_targets_it(define, start, make_agent, sent):
    agent = make_agent("reporter", [], known=False)
    definition = define(linear("anything"))
    start(definition)  # by capability: not used
    assert sent.calls == []
    session = start(definition, agent=agent)
    assert [c["agent_id"] for c in sent.calls] == ["reporter"]
    assert TaskRun.objects.get(session=session).agent == agent


def test_a_targeted_workflow_routes_tasks_its_agent_lacks_by_capability(define, start, make_agent, sent):
    target = make_agent("target", ["summarise"])
    make_agent("translator", ["translate"])
    session = start(define(linear("summarise", "translate")), agent=target)
    runs = {r.task_id: r for r in TaskRun.objects.filter(session=session)}
    assert runs["s1"].target_agent == target and runs["s1"].agent == target
    assert sent.to("translator") == []
    # s2 is routed by capability once s1 completes
    from lifecycle.services import agent_state_report

    now = timezone.now()
    agent_state_report(agent_id="target", state="active", details={}, reported_at=now)
    agent_state_report(agent_id="target", state="idle", details={"result": {}}, reported_at=now + timedelta(seconds=1))
    services.engine_drain()
    run2 = TaskRun.objects.get(session=session, task_id="s2")
    assert run2.target_agent is None and run2.agent.agent_id == "translator"


def test_a_run_is_never_dispatched_twice(define, start, make_agent, sent):
    make_agent("a1", ["c"])
    make_agent("a2", ["c"])
    session = start(define(linear("c")))
    assert services.engine_step().dispatched == []
    assert TaskRun.objects.get(session=session).status == "dispatched"
    assert len(sent.calls) == 1


def test_an_agent_never_holds_two_runs(define, start, make_agent, sent):
    make_agent("a1", ["c"])
    definition = define(single("c", "one"))
    first = start(definition)
    second = start(definition)
    assert len(sent.calls) == 1
    assert TaskRun.objects.get(session=first).status == "dispatched"
    assert TaskRun.objects.get(session=second).status == "pending"


def test_a_retry_waits_for_its_backoff(define, start, make_agent, sent, report):
    make_agent("a1", ["c"])
    session = start(define(single("c", "r", maxRetries=2, retryBackoffSeconds=10)))
    report("a1", "active")
    report("a1", "error", {"error_code": "E1", "message": "boom"})
    report("a1", "idle")
    retry = TaskRun.objects.get(session=session, attempt=2)
    assert retry.status == "pending" and retry.try_number == 2
    assert 9 <= (retry.ready_at - retry.created_at).total_seconds() <= 11
    assert services.engine_step().dispatched == []
    assert len(services.engine_step(now=retry.ready_at + timedelta(seconds=1)).dispatched) == 1
