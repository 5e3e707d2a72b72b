"""Many dispatchers and duplicate reports at once, on real Postgres transactions (one connection per thread)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from lifecycle.models import Agent
from lifecycle.services import agent_state_report
from workflows import services
from workflows.engine.dispatch import dispatch_ready
from workflows.engine.oplog import EventBuffer
from workflows.models import TaskRun, WorkflowSession
from workflows.tests.conftest import linear

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="row locks and SKIP LOCKED are Postgres's"),
]


def in_threads(target, count: int) -> None:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors


def dispatch_pass() -> None:
    """One dispatch pass in its own transaction, without the engine's lock (as if two engines ran at once)."""
    with transaction.atomic():
        dispatch_ready(now=timezone.now(), events_buffer=EventBuffer(), limit=500)


def test_concurrent_dispatchers_never_send_a_run_twice_nor_overload_an_agent(define, make_agent, sent):
    definition = define(linear("c"))
    for _ in range(30):
        services.session_start(definition=definition)  # no agent yet: all wait
    for i in range(10):
        make_agent(f"a{i}", ["c"])
    assert sent.calls == []

    in_threads(lambda index: dispatch_pass(), 8)  # dispatch passes racing each other, outside the engine lock
    services.engine_drain()  # whatever a lost race left behind
    refs = Counter(sent.refs)
    assert len(refs) == 10 and set(refs.values()) == {1}
    dispatched = TaskRun.objects.filter(status="dispatched")
    assert dispatched.count() == 10
    assert sorted(r.dispatch_ref for r in dispatched) == sorted(refs)
    held = Counter(Agent.objects.exclude(assigned_task="").values_list("assigned_task", flat=True))
    assert len(held) == 10 and set(held.values()) == {1}


def test_concurrent_reports_complete_a_run_once_and_dispatch_the_next_once(define, start_committed, make_agent, sent):
    make_agent("a1", ["c"])
    session = start_committed(define(linear("c", "c")))
    base = timezone.now()
    agent_state_report(agent_id="a1", state="active", details={}, reported_at=base)

    def report(index: int) -> None:
        agent_state_report(
            agent_id="a1", state="idle", details={"result": {"i": index}}, reported_at=base + timedelta(seconds=1)
        )

    in_threads(report, 6)
    in_threads(lambda index: services.engine_drain(), 4)
    runs = list(TaskRun.objects.filter(session=session).order_by("created_at"))
    assert [(r.task_id, r.status) for r in runs] == [("s1", "completed"), ("s2", "dispatched")]
    assert len(sent.calls) == 2


@pytest.fixture
def start_committed():
    def run(definition, **kwargs):
        session, _ = services.session_start(definition=definition, **kwargs)  # autocommit: on_commit runs now
        services.engine_drain()
        return session

    return run


def test_cancelling_while_dispatching_neither_deadlocks_nor_leaves_agents_held(define, make_agent, sent):
    definition = define(linear("c", "c"))
    sessions = [services.session_start(definition=definition)[0] for _ in range(20)]
    for i in range(10):
        make_agent(f"a{i}", ["c"])

    def work(index: int) -> None:
        if index % 2:
            dispatch_pass()
            services.engine_drain()
        else:
            for session in sessions[index // 2 :: 4]:
                services.session_cancel(session_id=session.pk)

    in_threads(work, 8)
    assert set(WorkflowSession.objects.values_list("status", flat=True)) == {"cancelled"}
    assert not TaskRun.objects.filter(status__in=["pending", "dispatched", "running"]).exists()
    assert set(Agent.objects.values_list("assigned_task", flat=True)) == {""}
