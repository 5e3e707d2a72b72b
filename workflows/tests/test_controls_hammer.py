"""Hammer the concurrency limits on real Postgres: engine steps and bare dispatch passes (as if several engines
ran at once, outside the engine lock) race in threads with agents completing tasks, while a monitor samples the
database; no limit may ever be exceeded and a paused workflow never starts."""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from lifecycle.models import Agent
from lifecycle.services import agent_state_report
from workflows import services
from workflows.engine import controls
from workflows.engine.dispatch import dispatch_ready
from workflows.engine.oplog import EventBuffer
from workflows.models import TaskRun, WorkflowSession
from workflows.tests.conftest import linear

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="advisory locks and SKIP LOCKED are Postgres's"),
]

AGENTS = 16
CAPABILITY_LIMIT = 3  # tasks of "c" in flight
WORKFLOW_LIMIT = 2  # sessions of "limited" running
TIME_BUDGET = 60.0

# One statement: a consistent snapshot of everything the limits govern.
_USAGE_SQL = """
SELECT
  (SELECT count(*) FROM workflows_taskrun WHERE capability = 'c' AND status IN ('dispatched', 'running')),
  (SELECT count(*) FROM workflows_workflowsession s WHERE s.workflow_id = 'limited'
     AND s.status IN ('pending', 'running')
     AND EXISTS (SELECT 1 FROM workflows_taskrun r WHERE r.session_id = s.id AND r.status <> 'pending')),
  (SELECT count(*) FROM workflows_taskrun r JOIN workflows_workflowsession s ON s.id = r.session_id
     WHERE s.workflow_id = 'paused' AND r.status <> 'pending'),
  (SELECT count(*) FROM workflows_workflowsession WHERE workflow_id <> 'paused' AND status <> 'completed')
"""


def usage() -> tuple[int, int, int, int]:
    with connection.cursor() as cursor:
        cursor.execute(_USAGE_SQL)
        return cursor.fetchone()


def test_concurrent_dispatchers_never_exceed_a_limit(define, make_agent, sent):
    for index in range(AGENTS):
        make_agent(f"a{index}", ["c", "d"])
    limited = define(linear("c", "d", wf_id="limited"))
    free = define(linear("c", wf_id="free", priority=5))  # higher priority: competes for the "c" slots
    other = define(linear("d", wf_id="other"))
    paused = define(linear("c", wf_id="paused"))
    controls.capability_limit_set(capability="c", max_in_flight=CAPABILITY_LIMIT)
    controls.workflow_limits_set(workflow_id="limited", max_running_sessions=WORKFLOW_LIMIT)
    controls.workflow_pause(workflow_id="paused")
    for definition, count in ((limited, 12), (free, 12), (other, 12), (paused, 4)):
        for _ in range(count):
            services.session_start(definition=definition)

    stop = threading.Event()
    errors: list[BaseException] = []
    peaks = {"c": 0, "limited": 0, "paused": 0}
    peaks_lock = threading.Lock()

    def record() -> None:
        in_flight, running, paused_started, _ = usage()
        with peaks_lock:
            peaks["c"] = max(peaks["c"], in_flight)
            peaks["limited"] = max(peaks["limited"], running)
            peaks["paused"] = max(peaks["paused"], paused_started)

    def engine(index: int) -> None:
        while not stop.is_set():
            services.engine_step()
            record()

    def bare_dispatcher(index: int) -> None:
        while not stop.is_set():
            with transaction.atomic():
                dispatch_ready(now=timezone.now(), events_buffer=EventBuffer(), limit=500)
            record()

    def agents(index: int) -> None:
        rng = random.Random(index)
        mine = [f"a{i}" for i in range(AGENTS) if i % 2 == index]
        while not stop.is_set():
            busy = list(Agent.objects.filter(agent_id__in=mine).exclude(assigned_task="").values_list("agent_id"))
            for (agent_id,) in busy:
                agent_state_report(agent_id=agent_id, state="active", details={}, reported_at=timezone.now())
                time.sleep(rng.uniform(0, 0.01))
                agent_state_report(agent_id=agent_id, state="idle", details={}, reported_at=timezone.now())
            time.sleep(0.005)

    def monitor(index: int) -> None:
        while not stop.is_set():
            record()
            if usage()[3] == 0:
                stop.set()

    def guarded(target, index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            stop.set()
        finally:
            connection.close()

    workers = [(engine, 0), (engine, 1), (bare_dispatcher, 0), (bare_dispatcher, 1), (agents, 0), (agents, 1)]
    workers.append((monitor, 0))
    threads = [threading.Thread(target=guarded, args=work) for work in workers]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    stop.wait(TIME_BUDGET)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    elapsed = time.monotonic() - started

    remaining = WorkflowSession.objects.exclude(workflow_id="paused").exclude(status="completed").count()
    assert remaining == 0, f"{remaining} sessions unfinished after {elapsed:.0f}s"
    # The limits were reached (the test can fail) and never exceeded.
    assert peaks == {"c": CAPABILITY_LIMIT, "limited": WORKFLOW_LIMIT, "paused": 0}
    assert set(WorkflowSession.objects.filter(workflow_id="paused").values_list("status", flat=True)) == {"pending"}
    dispatched = TaskRun.objects.exclude(dispatch_ref="").values_list("dispatch_ref", flat=True)
    assert len(sent.refs) == len(set(sent.refs)) == len(dispatched)  # no run was sent twice

    controls.workflow_resume(workflow_id="paused")
    services.engine_drain()
    assert TaskRun.objects.filter(session__workflow_id="paused", status="dispatched").count() == CAPABILITY_LIMIT


def test_a_dispatcher_waits_for_another_that_read_the_same_limit(define, make_agent, sent, monkeypatch):
    """The worst interleaving, forced: pass A has read the limit's usage and is about to dispatch when pass B
    starts. B must wait for A's commit and then see A's dispatch, not dispatch into the same free slot."""
    from workflows.engine import dispatch

    a1, a2 = make_agent("a1", ["c"]), make_agent("a2", ["c"])
    definition = define(linear("c", wf_id="wf"))
    services.session_start(definition=definition, agent=a1)
    controls.capability_limit_set(capability="c", max_in_flight=1)

    a_has_read = threading.Event()
    b_finished = threading.Event()
    real_match = dispatch._match

    def match_then_stall(runs, agents, gate=None):
        pairs = real_match(runs, agents, gate)
        if threading.current_thread().name == "A":
            a_has_read.set()
            b_finished.wait(timeout=2)  # B finishing meanwhile would mean it did not wait for A
        return pairs

    monkeypatch.setattr(dispatch, "_match", match_then_stall)
    errors: list[BaseException] = []

    def pass_a() -> None:
        try:
            with transaction.atomic():
                dispatch_ready(now=timezone.now(), events_buffer=EventBuffer(), limit=500)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    def pass_b() -> None:
        try:
            a_has_read.wait(timeout=5)
            # Work A could not have seen nor locked, for an agent A does not want: only the limit is shared.
            services.session_start(definition=definition, agent=a2)
            with transaction.atomic():
                dispatch_ready(now=timezone.now(), events_buffer=EventBuffer(), limit=500)
            b_finished.set()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pass_a, name="A"), threading.Thread(target=pass_b, name="B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert TaskRun.objects.filter(status="dispatched").count() == 1
    assert len(sent.calls) == 1
