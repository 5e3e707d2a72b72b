"""Deadlines the engine enforces in its batches (indexed columns, read in one query each per step).

- ``timeout_at``: the whole task timeout while dispatched or running → the attempt times out (retry policy).
- ``start_deadline``: dispatched but no ``active`` by then → AgentKit accepted the task and never delivered it
  (contract 3). The run goes to another eligible agent, up to OPSCORE_TASK_MAX_REDELIVERIES times, and the agent's
  delivery-failure count goes up; after that the attempt fails.
- ``queue_deadline``: pending with no able agent for that long → the run fails without retry. Runs held by an
  operator's pause (maintenance mode, or a paused workflow's pending sessions) are not waiting for an agent: their
  queue deadline is not enforced during the pause and is moved by its length on resume (``controls``).
- ``timeout_at`` of a human task waiting for input → its ``onTimeout`` (fail, approve, reject or a default value).
- ``remind_at`` of a waiting human task → a ``task.reminder`` event and webhook, once. People's deadlines are
  enforced during pauses too: a pause holds dispatch to agents, not answers.
Retries waiting for their backoff need no deadline: the dispatch pass only takes runs whose ``ready_at`` passed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Value

from opscore_project.observability import events
from workflows.engine import human
from workflows.engine.controls import NO_CONTROLS, DispatchControls
from workflows.engine.transitions import Transitions
from workflows.models import TASK_RUN_IN_FLIGHT, TaskRun, TaskRunStatus


@dataclass
class Due:
    timed_out: list[uuid.UUID] = field(default_factory=list)
    not_started: list[uuid.UUID] = field(default_factory=list)
    queue_expired: list[uuid.UUID] = field(default_factory=list)
    input_expired: list[uuid.UUID] = field(default_factory=list)
    reminders: list[uuid.UUID] = field(default_factory=list)

    @property
    def run_ids(self) -> set[uuid.UUID]:
        return {*self.timed_out, *self.not_started, *self.queue_expired, *self.input_expired, *self.reminders}


def due_runs(*, now: datetime, limit: int, controls: DispatchControls = NO_CONTROLS) -> Due:
    """Overdue runs of each kind, in one query on Postgres (a UNION of three reads of the partial deadline
    indexes)."""
    runs = TaskRun.objects.order_by()
    # ``due_kind``, not ``kind``: task runs have a ``kind`` field (agent, approval, input).
    timed_out = runs.filter(status__in=TASK_RUN_IN_FLIGHT, timeout_at__lte=now).annotate(due_kind=Value("t"))
    not_started = runs.filter(status=TaskRunStatus.DISPATCHED, start_deadline__lte=now).annotate(due_kind=Value("s"))
    expired = runs.filter(status=TaskRunStatus.PENDING, queue_deadline__lte=now).annotate(due_kind=Value("q"))
    if controls.paused_workflows:
        expired = expired.exclude(session__status="pending", session__workflow_id__in=sorted(controls.paused_workflows))
    waiting = runs.filter(status=TaskRunStatus.WAITING_FOR_INPUT)
    unanswered = waiting.filter(timeout_at__lte=now).annotate(due_kind=Value("w"))
    remind = waiting.filter(remind_at__lte=now).annotate(due_kind=Value("r"))
    due = Due()
    lists = {"t": due.timed_out, "s": due.not_started, "q": due.queue_expired, "w": due.input_expired}
    lists["r"] = due.reminders
    kinds = (timed_out, not_started) if controls.dispatch_paused else (timed_out, not_started, expired)
    parts = [query.values_list("due_kind", "id")[:limit] for query in (*kinds, unanswered, remind)]
    if connection.features.supports_slicing_ordering_in_compound:
        rows = parts[0].union(*parts[1:], all=True)
    else:  # SQLite: three queries
        rows = [row for part in parts for row in part]
    for kind, run_id in rows:
        lists[kind].append(run_id)
    return due


def apply_deadlines(tx: Transitions, due: Due) -> None:
    """Act on runs found overdue, re-checked on the rows loaded under their session's lock."""
    now = tx.now
    for run in _runs(tx, due.timed_out):
        if run.status in TASK_RUN_IN_FLIGHT and run.timeout_at and run.timeout_at <= now:
            tx.fail(run, TaskRunStatus.TIMED_OUT, "Timed out: no result from the agent before the task's timeout.")
    for run in _runs(tx, due.not_started):
        if run.status == TaskRunStatus.DISPATCHED and run.start_deadline and run.start_deadline <= now:
            _delivery_failed(tx, run)
    for run in _runs(tx, due.queue_expired):
        if run.status == TaskRunStatus.PENDING and run.queue_deadline and run.queue_deadline <= now:
            tx.fail(
                run,
                TaskRunStatus.FAILED,
                "Queue timeout: no free agent able to run the task became available in time.",
                allow_retry=False,
            )
    for run in _runs(tx, due.input_expired):
        if run.status == TaskRunStatus.WAITING_FOR_INPUT and run.timeout_at and run.timeout_at <= now:
            human.on_timeout(tx, run)
    for run in _runs(tx, due.reminders):
        if run.status == TaskRunStatus.WAITING_FOR_INPUT and run.remind_at and run.remind_at <= now:
            human.remind(tx, run)


def _delivery_failed(tx: Transitions, run: TaskRun) -> None:
    waited = (run.start_deadline - run.dispatched_at).total_seconds() if run.dispatched_at else 0
    agent = tx.agent_id_of(run)
    if run.redeliveries < settings.OPSCORE_TASK_MAX_REDELIVERIES:
        tx.requeue(
            run,
            reason=f"Delivery failed: agent {agent} did not start the task within {waited:g}s of its dispatch "
            "(AgentKit accepted it); sending it to another agent",
            event=events.TASK_DELIVERY_FAILED,
            delivery_failed=True,
        )
        return
    tx.count_delivery_failure(run)
    tx.fail(
        run,
        TaskRunStatus.FAILED,
        f"Delivery failed: no agent started the task within {waited:g}s of its dispatch "
        f"({run.redeliveries + 1} deliveries accepted by AgentKit).",
    )


def _runs(tx: Transitions, run_ids: list[uuid.UUID]) -> list[TaskRun]:
    return [tx.run_index[run_id] for run_id in run_ids if run_id in tx.run_index]
