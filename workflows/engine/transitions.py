"""Session and task-run transitions applied in memory to locked sessions, then written in a few statements.

``Transitions`` is the one way the engine changes sessions that already exist: the engine step uses it for a
whole batch of reports and deadlines, and cancel/retry for one session. Every method expects the session to have
been loaded (and locked) with ``load``. ``write`` then issues a fixed number of statements whatever the batch
size: one bulk UPDATE of the changed runs, one INSERT of the new ones, one UPDATE per ended session, one UPDATE
releasing agents (by primary key) that also records their task outcomes for the circuit breaker, one DELETE of
discarded outbox rows, one INSERT of operation-log events.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction

from lifecycle.controls import Outcomes, agents_release
from lifecycle.models import Agent
from opscore_project.lib.db import WriteBatch, bulk_insert_rows, bulk_update_rows, raw_models
from opscore_project.observability import events
from workflows import selectors
from workflows.engine import planning
from workflows.engine.oplog import EventBuffer
from workflows.models import (
    TASK_RUN_ACTIVE,
    TASK_RUN_IN_FLIGHT,
    SessionStatus,
    TaskRun,
    TaskRunStatus,
    WorkflowSession,
    duration_ms,
)

logger = logging.getLogger(__name__)

_SESSION_END_EVENTS = {
    SessionStatus.COMPLETED: events.SESSION_COMPLETED,
    SessionStatus.FAILED: events.SESSION_FAILED,
    SessionStatus.CANCELLED: events.SESSION_CANCELLED,
}


# What the engine never reads of the agents it loads with sessions and runs (JSON decoded for nothing otherwise).
_AGENT_UNUSED = ("agent__metadata", "agent__state_details", "agent__contact_endpoint")


def _columns(model, alias: str) -> str:
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


# The load as plain SQL on Postgres: it runs on every step, and building the two ORM queries cost more than
# Postgres answering them (profile: a third of a low-load step). Sessions are locked before their runs, in id
# order; runs are locked too: a dispatch pass may be assigning one of them right now (it holds the run, not the
# session), and waiting for it here means reading the run as that pass committed it. Of an agent the engine reads
# only its id, and of a session's agent its capabilities (routing of the tasks it creates).
_LOAD_SESSIONS_SQL = f"""
SELECT {_columns(WorkflowSession, "s")},
       a.agent_id AS agent_ident, a.capabilities::text AS agent_capabilities, a.capabilities_known AS agent_known
FROM workflows_workflowsession s LEFT JOIN lifecycle_agent a ON a.id = s.agent_id
WHERE s.id IN ({{ids}})
ORDER BY s.id
FOR UPDATE OF s
"""
_SESSIONS_BY_ID = "SELECT unnest(%s::uuid[])"
_SESSIONS_OF_RUNS = "SELECT session_id FROM workflows_taskrun WHERE id = ANY(%s::uuid[])"
# A dispatched run's acceptance time lives in the relay's attempts until the run moves on (``_record_acceptance``).
_LOAD_RUNS_SQL = f"""
SELECT {_columns(TaskRun, "r")}, a.agent_id AS agent_ident,
       (SELECT d.created_at FROM agentkit_bridge_dispatchattempt d
        WHERE r.accepted_at IS NULL AND r.dispatched_at IS NOT NULL
          AND d.dispatch_ref = r.dispatch_ref AND d.outcome = 'accepted' LIMIT 1) AS dispatch_accepted_at
FROM workflows_taskrun r LEFT JOIN lifecycle_agent a ON a.id = r.agent_id
WHERE r.session_id = ANY(%s::uuid[])
ORDER BY r.attempt
FOR UPDATE OF r
"""


def _load_postgres(
    session_ids: set[uuid.UUID] | None, run_ids: set[uuid.UUID] | None
) -> tuple[list[WorkflowSession], list[TaskRun]]:
    if run_ids is not None:
        sql, ids = _LOAD_SESSIONS_SQL.format(ids=_SESSIONS_OF_RUNS), list(run_ids)
    else:
        sql, ids = _LOAD_SESSIONS_SQL.format(ids=_SESSIONS_BY_ID), sorted(session_ids)
    sessions = raw_models(WorkflowSession, sql, [ids])
    for session in sessions:
        if session.agent_id is not None:
            session.agent = _agent_stub(
                session.agent_id, session.agent_ident, json.loads(session.agent_capabilities), session.agent_known
            )
    if not sessions:
        return [], []
    runs = raw_models(TaskRun, _LOAD_RUNS_SQL, [[session.pk for session in sessions]])
    for run in runs:
        if run.agent_id is not None:
            run.agent = _agent_stub(run.agent_id, run.agent_ident)
    return sessions, runs


def _agent_stub(pk: int, agent_id: str, capabilities: list | None = None, known: bool = False) -> Agent:
    """The few fields of an agent the engine reads (others are deferred: reading one would query)."""
    if capabilities is None:
        return Agent.from_db(DEFAULT_DB_ALIAS, ["id", "agent_id"], [pk, agent_id])
    return Agent.from_db(
        DEFAULT_DB_ALIAS, ["id", "agent_id", "capabilities", "capabilities_known"], [pk, agent_id, capabilities, known]
    )


def _load_generic(
    session_ids: set[uuid.UUID] | None, run_ids: set[uuid.UUID] | None
) -> tuple[list[WorkflowSession], list[TaskRun]]:
    """The ORM twin of ``_load_postgres`` (embedded SQLite mode)."""
    locked = (
        WorkflowSession.objects.select_for_update(of=("self",))
        .select_related("agent")
        .defer(*_AGENT_UNUSED)
        .order_by("pk")
    )
    if run_ids is not None:
        locked = locked.filter(pk__in=TaskRun.objects.filter(pk__in=run_ids).order_by().values("session_id"))
    else:
        locked = locked.filter(pk__in=sorted(session_ids))
    sessions = list(locked)
    runs = (
        TaskRun.objects.select_for_update(of=("self",))
        .filter(session_id__in=[session.pk for session in sessions])
        .select_related("agent")
        .defer(*_AGENT_UNUSED, "agent__capabilities")
        .order_by("attempt")
    )
    return sessions, list(runs)


class Transitions:
    def __init__(self, now: datetime, events_buffer: EventBuffer | None = None) -> None:
        self.now = now
        self.events = events_buffer or EventBuffer()
        self.sessions: dict[uuid.UUID, WorkflowSession] = {}
        self.runs: dict[uuid.UUID, list[TaskRun]] = {}  # session id -> its runs
        self.run_index: dict[uuid.UUID, TaskRun] = {}
        self._changed_runs: dict[uuid.UUID, tuple[TaskRun, set[str]]] = {}
        self._new_runs: list[TaskRun] = []
        self._new_ids: set[uuid.UUID] = set()
        self._changed_sessions: dict[uuid.UUID, set[str]] = defaultdict(set)
        self._released: list[tuple[int, str]] = []  # (agent pk, run id)
        self._discarded_refs: list[str] = []
        self._accepted_refs: set[str] = set()
        self._delivery_failures: Counter[int] = Counter()
        self._outcomes: dict[int, list[bool]] = defaultdict(list)  # agent pk -> its runs' outcomes, in order
        self._human_notices: list[tuple[str, str]] = []  # (run id, event): webhooks sent after commit
        self.ended_sessions: list[WorkflowSession] = []

    # --- loading --------------------------------------------------------------------------------------------

    def load(self, session_ids: set[uuid.UUID] | None = None, *, run_ids: set[uuid.UUID] | None = None) -> None:
        """Lock the sessions (in id order: one lock order everywhere), given by id or as the sessions of
        ``run_ids``, and load every run of theirs."""
        if run_ids is None:
            session_ids = set(session_ids or ()) - set(self.sessions)
            if not session_ids:
                return
        if settings.IS_POSTGRES:
            sessions, runs = _load_postgres(session_ids, run_ids)
        else:
            sessions, runs = _load_generic(session_ids, run_ids)
        for session in sessions:
            self.sessions[session.pk] = session
            self.runs[session.pk] = []
        for run in runs:
            if run.session_id in self.runs:
                self.runs[run.session_id].append(run)
                self.run_index[run.pk] = run

    def session_of(self, run: TaskRun) -> WorkflowSession:
        return self.sessions[run.session_id]

    # --- low-level changes ----------------------------------------------------------------------------------

    def change(self, run: TaskRun, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(run, name, value)
        if run.pk in self._changed_runs:
            self._changed_runs[run.pk][1].update(fields)
        elif run.pk not in self._new_ids:
            self._changed_runs[run.pk] = (run, set(fields))

    def _add_runs(self, new_runs: list[TaskRun]) -> None:
        for run in new_runs:
            self._new_runs.append(run)
            self._new_ids.add(run.pk)
            self.run_index[run.pk] = run
        self._human_notices += announce_waiting(self.events, new_runs)

    def _leave_flight(self, run: TaskRun) -> None:
        """The run stops holding its agent and its unsent dispatch (the fencing token) is discarded."""
        if run.status in TASK_RUN_IN_FLIGHT:
            if run.agent_id:
                self._released.append((run.agent_id, str(run.pk)))
            if run.dispatch_ref:
                self._discarded_refs.append(run.dispatch_ref)

    def _record_outcome(self, run: TaskRun, success: bool) -> None:
        """An attempt the agent held ended: success or failure feeds its circuit breaker (written by ``write``)."""
        if run.agent_id and run.status in TASK_RUN_IN_FLIGHT:
            self._outcomes[run.agent_id].append(success)

    def _change_session(self, session: WorkflowSession, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(session, name, value)
        self._changed_sessions[session.pk].update(fields)

    # --- run transitions ------------------------------------------------------------------------------------

    def start(self, run: TaskRun, reported_at: datetime) -> None:
        """``active`` after the dispatch: the run is running."""
        self.change(
            run, status=TaskRunStatus.RUNNING, started_at=self.now, reported_active_at=reported_at, start_deadline=None
        )
        session = self.session_of(run)
        if session.status == SessionStatus.PENDING:  # its dispatch could not mark it (see sessions_mark_started)
            self._change_session(session, status=SessionStatus.RUNNING, started_at=run.dispatched_at or self.now)
        self.events.add(
            events.TASK_RUNNING,
            {"taskId": run.task_id},
            message=f"Task {run.task_id} running (agent reported active)",
            agent_id=self.agent_id_of(run),
            session_id=run.session_id,
            task_id=run.pk,
        )

    def complete(self, run: TaskRun, result: Any) -> None:
        """The run is done with ``result``; the session advances."""
        self._record_outcome(run, True)
        self._leave_flight(run)
        self.change(run, status=TaskRunStatus.COMPLETED, result=result, ended_at=self.now, start_deadline=None)
        self.events.add(
            events.TASK_COMPLETED,
            {"taskId": run.task_id, "attempt": run.attempt, "duration_ms": duration_ms(run.dispatched_at, self.now)},
            message=f"Task {run.task_id} completed",
            agent_id=self.agent_id_of(run),
            session_id=run.session_id,
            task_id=run.pk,
        )
        session = self.session_of(run)
        if session.is_active:
            self.advance(session)

    def fail(self, run: TaskRun, status: str, error: str, *, allow_retry: bool = True) -> None:
        """End one attempt as failed or timed out, then retry (with backoff), fall back, or fail the session."""
        self._record_outcome(run, False)
        allow_retry = allow_retry and not run.is_human  # nobody answered: asking again is a session retry
        self._leave_flight(run)
        self.change(run, status=status, error=error, ended_at=self.now, start_deadline=None)
        self.events.add(
            events.TASK_TIMED_OUT if status == TaskRunStatus.TIMED_OUT else events.TASK_FAILED,
            {"taskId": run.task_id, "attempt": run.attempt, "error": error},
            level="warning",
            message=f"Task {run.task_id} attempt {run.attempt} {status}: {error}",
            agent_id=self.agent_id_of(run),
            session_id=run.session_id,
            task_id=run.pk,
        )
        session = self.session_of(run)
        if not session.is_active:
            return
        definition = selectors.definition_of(session)
        runs = self.runs[session.pk]
        plan = planning.after_failure(session, definition, run, runs, self.now, allow_retry=allow_retry)
        if plan.run is not None:
            self._add_runs([plan.run])
        if plan.kind == "retry":
            self.events.add(
                events.TASK_RETRIED,
                {"taskId": run.task_id, "attempt": plan.run.attempt, "delaySeconds": plan.delay},
                message=f"Task {run.task_id} will be retried in {plan.delay:g}s (attempt {plan.run.attempt})",
                session_id=session.pk,
                task_id=plan.run.pk,
            )
        elif plan.kind == "fallback":
            original = run.fallback_for or run.task_id
            self.events.add(
                events.TASK_FALLBACK,
                {"taskId": original, "fallbackTaskId": plan.run.task_id},
                level="warning",
                message=f"Task {original} failed for good; running fallback {plan.run.task_id}",
                session_id=session.pk,
                task_id=plan.run.pk,
            )
        else:
            self.end_session(session, SessionStatus.FAILED, f"Task {run.task_id} failed: {error}")

    def requeue(self, run: TaskRun, *, reason: str, event: str, delivery_failed: bool = False) -> None:
        """Send a dispatched run to another agent as the same attempt (AgentKit lost the agent, or the agent
        never started it). A delivery failure is counted on the agent, and the run avoids that agent."""
        agent_pk, agent_id = run.agent_id, self.agent_id_of(run)
        if delivery_failed:
            self._record_outcome(run, False)
        self._leave_flight(run)
        if delivery_failed and agent_pk:
            self._delivery_failures[agent_pk] += 1
        self.change(
            run,
            status=TaskRunStatus.PENDING,
            agent_id=None,
            target_agent_id=None if not delivery_failed else run.target_agent_id,
            avoid_agent_id=agent_pk if delivery_failed else run.avoid_agent_id,
            redeliveries=run.redeliveries + (1 if delivery_failed else 0),
            dispatched_at=None,
            accepted_at=None,
            timeout_at=None,
            start_deadline=None,
            early_idle_at=None,
            early_result=None,
            ready_at=self.now,
        )
        self.events.add(
            event,
            {"reason": reason, "redeliveries": run.redeliveries},
            level="warning",
            message=reason,
            agent_id=agent_id,
            session_id=run.session_id,
            task_id=run.pk,
        )

    def answer(self, run: TaskRun, result: Any, *, rejected: bool = False, error: str = "") -> None:
        """A person (or the timeout's default) answered a waiting human task: the answer is its result. An
        approval's rejection routes to its ``onReject`` task, else fails the session."""
        if not rejected:
            self.complete(run, result)
            return
        self.change(run, status=TaskRunStatus.REJECTED, result=result, error=error, ended_at=self.now)
        session = self.session_of(run)
        if not session.is_active:
            return
        definition = selectors.definition_of(session)
        on_reject = definition.task(run.task_id).get("onReject")
        if on_reject:
            runs = self.runs[session.pk]
            next_attempt = planning.attempt_counter(runs)
            self._add_runs(
                [
                    planning.build_run(
                        session, definition, on_reject, self.now, runs=runs, attempt=next_attempt(on_reject)
                    )
                ]
            )
            self.advance(session)
        else:
            self.end_session(session, SessionStatus.FAILED, error)

    # --- session transitions --------------------------------------------------------------------------------

    def advance(self, session: WorkflowSession) -> None:
        """Create runs for tasks whose dependencies are done; complete the session when nothing is left."""
        runs = self.runs[session.pk]
        self._add_runs(planning.ready_runs(session, selectors.definition_of(session), runs, self.now))
        if planning.nothing_left(runs):
            self.end_session(session, SessionStatus.COMPLETED, "")

    def end_session(
        self, session: WorkflowSession, status: str, error: str, run_status: str = TaskRunStatus.CANCELLED
    ) -> None:
        """End the session; its open runs are skipped (never started) or cancelled, their agents freed."""
        open_runs = [run for run in self.runs[session.pk] if run.status in TASK_RUN_ACTIVE]
        reason = error or "Session ended."
        for run in open_runs:
            self._leave_flight(run)
            ended = TaskRunStatus.SKIPPED if status == SessionStatus.FAILED and run.status == "pending" else run_status
            self.change(run, status=ended, ended_at=self.now, error=reason, start_deadline=None)
        self._change_session(session, status=status, error=error, ended_at=self.now)
        self.ended_sessions.append(session)
        self.events.add(
            _SESSION_END_EVENTS[status],
            {"workflowId": session.workflow_id, "cancelledRuns": len(open_runs)},
            level="error" if status == SessionStatus.FAILED else "info",
            message=f"Session {status}" + (f": {error}" if error else ""),
            agent_id=session.agent.agent_id if session.agent_id else "",
            session_id=session.pk,
        )

    def retry_session(self, session: WorkflowSession) -> None:
        """Re-run a failed session from its failed step(s); completed steps keep their results."""
        definition = selectors.definition_of(session)
        self._change_session(
            session,
            retry_round=session.retry_round + 1,
            status=SessionStatus.RUNNING if session.started_at else SessionStatus.PENDING,
            ended_at=None,
            error="",
        )
        runs = self.runs[session.pk]
        done = planning.done_tasks(runs)
        latest = {run.task_id: run for run in runs if not run.fallback_for}
        next_attempt = planning.attempt_counter(runs)
        for task_id, run in latest.items():
            if task_id not in done and run.status not in (*TASK_RUN_ACTIVE, TaskRunStatus.COMPLETED):
                self._add_runs(
                    [
                        planning.build_run(
                            session, definition, task_id, self.now, runs=runs, attempt=next_attempt(task_id)
                        )
                    ]
                )
        self.events.add(
            events.SESSION_RETRIED,
            {"round": session.retry_round},
            message=f"Session retried from its failed step(s) (round {session.retry_round})",
            session_id=session.pk,
        )
        self.advance(session)

    # --- writing --------------------------------------------------------------------------------------------

    def _record_acceptance(self) -> None:
        """Runs that moved on in this batch get the time AgentKit accepted their dispatch (one query): the relay
        records acceptances only in its own tables, so task runs are written by the engine alone."""
        self._accepted_refs = {
            run.dispatch_ref for run, _ in self._changed_runs.values() if run.dispatch_ref and run.accepted_at
        }
        unknown = {
            run.dispatch_ref: run
            for run, _ in self._changed_runs.values()
            if run.dispatch_ref and run.accepted_at is None and run.dispatched_at is not None
        }
        for ref, run in list(unknown.items()):  # read with the run by the load (Postgres), if it was accepted then
            if getattr(run, "dispatch_accepted_at", None) is not None:
                self.change(run, accepted_at=run.dispatch_accepted_at)
                self._accepted_refs.add(ref)
                del unknown[ref]
        if not unknown:
            return
        from agentkit_bridge.dispatch import dispatches_accepted_at

        for ref, accepted_at in dispatches_accepted_at(dispatch_refs=list(unknown)).items():
            self.change(unknown[ref], accepted_at=accepted_at)
            self._accepted_refs.add(ref)

    def _sync_waiting_status(self) -> None:
        """Active sessions show ``waiting_for_input`` while a person is their only hold-up."""
        for session_id, session in self.sessions.items():
            status = planning.waiting_status(session, self.runs[session_id])
            if status is None:
                continue
            if status == SessionStatus.WAITING_FOR_INPUT and session.started_at is None:
                self._change_session(session, status=status, started_at=self.now)
            else:
                self._change_session(session, status=status)

    def write(self, *, flush_events: bool = True) -> None:
        """Write every change in a fixed number of statements (call inside the transaction that loaded).
        ``flush_events=False`` leaves the events in the buffer for the caller to write with its own."""
        self._sync_waiting_status()
        self._record_acceptance()
        # The writes below touch different rows and read nothing back: on Postgres they go as one statement.
        batch = WriteBatch() if settings.IS_POSTGRES else None
        if self._changed_runs:
            fields = sorted(set().union(*(names for _, names in self._changed_runs.values())))
            fields = [name[:-3] if name.endswith("_id") else name for name in fields]
            bulk_update_rows(TaskRun, [run for run, _ in self._changed_runs.values()], fields, batch=batch)
        if self._new_runs:
            bulk_insert_rows(TaskRun, self._new_runs, batch=batch)
        by_fields: dict[tuple[str, ...], list[WorkflowSession]] = defaultdict(list)
        for session_id, names in self._changed_sessions.items():
            by_fields[tuple(sorted(names))].append(self.sessions[session_id])
        for names, sessions in by_fields.items():  # usually one group: the sessions that ended
            bulk_update_rows(WorkflowSession, sessions, list(names), batch=batch)
        # A dispatch AgentKit accepted has left the outbox already; only unsent ones are discarded.
        unsent = [ref for ref in self._discarded_refs if ref not in self._accepted_refs]
        if unsent:
            from agentkit_bridge.dispatch import dispatches_discard

            dispatches_discard(dispatch_refs=unsent, batch=batch)
        if self._released or self._outcomes or self._delivery_failures:
            self._release_agents(batch)  # the batch's last statement, on Postgres
        elif batch:
            batch.execute()
        if flush_events:
            self.events.flush()
        callbacks = [str(session.pk) for session in self.ended_sessions if session.callback_url]
        if callbacks:
            transaction.on_commit(lambda: _enqueue_callbacks(callbacks))
        if self._human_notices:
            notices = list(self._human_notices)
            transaction.on_commit(lambda: enqueue_human_notices(notices))
            self._human_notices.clear()
        self._changed_runs.clear()
        self._new_runs.clear()
        self._new_ids.clear()
        self._changed_sessions.clear()
        self._released.clear()
        self._discarded_refs.clear()
        self._delivery_failures.clear()
        self._outcomes.clear()
        self.ended_sessions = []

    def _release_agents(self, batch: WriteBatch | None = None) -> None:
        """Free the agents whose runs left flight and record the batch's outcomes (failure streaks, delivery failures,
        circuit-breaker moves) in one statement (``agents_release``); the breaker's moves become events of this
        batch."""
        agents = set(self._outcomes) | set(self._delivery_failures)
        outcomes = {pk: Outcomes.of(self._outcomes.get(pk, []), self._delivery_failures[pk]) for pk in agents}
        for change in agents_release(released=self._released, outcomes=outcomes, now=self.now, batch=batch):
            if change.move == "close":
                self.events.add(
                    events.AGENT_QUARANTINE_RELEASED,
                    {"manual": False, "reason": "trial task succeeded"},
                    message=f"Agent {change.agent_id} released from quarantine: its trial task succeeded",
                    agent_id=change.agent_id,
                )
                continue
            until = change.until.isoformat() if change.until else None
            why = (
                f"its last {change.consecutive_failures} task outcomes were failures"
                if change.move == "open"
                else "its trial task failed"
            )
            self.events.add(
                events.AGENT_QUARANTINED,
                {
                    "manual": False,
                    "reason": "trial failed" if change.move == "reopen" else "consecutive failures",
                    "consecutiveFailures": change.consecutive_failures,
                    "cooldownSeconds": change.cooldown_seconds,
                    "until": until,
                },
                level="warning",
                message=f"Agent {change.agent_id} quarantined for {change.cooldown_seconds}s: {why}",
                agent_id=change.agent_id,
            )

    # --- helpers --------------------------------------------------------------------------------------------

    @staticmethod
    def agent_id_of(run: TaskRun) -> str:
        """The AgentKit id of the run's agent (runs are loaded with their agent)."""
        return run.agent.agent_id if run.agent_id else ""

    def notify(self, run: TaskRun, event: str) -> None:
        """Send a human task's webhook notice for ``event`` once this transaction commits."""
        self._human_notices.append((str(run.pk), event))

    def count_delivery_failure(self, run: TaskRun) -> None:
        if run.agent_id:
            self._delivery_failures[run.agent_id] += 1


def announce_waiting(buffer: EventBuffer, runs: list[TaskRun]) -> list[tuple[str, str]]:
    """``task.waiting_for_input`` for each new human run; returns the webhook notices to send after commit."""
    notices = []
    for run in runs:
        if run.status != TaskRunStatus.WAITING_FOR_INPUT:
            continue
        buffer.add(
            events.TASK_WAITING_FOR_INPUT,
            {"taskId": run.task_id, "kind": run.kind, "assignees": run.assignees or []},
            message=f"Task {run.task_id} waiting for input: {run.prompt}",
            session_id=run.session_id,
            task_id=run.pk,
        )
        notices.append((str(run.pk), events.TASK_WAITING_FOR_INPUT))
    return notices


def enqueue_human_notices(notices: list[tuple[str, str]]) -> None:
    """Human-task webhooks (the session's callbackUrl, the workflow's notifyUrl), by task name."""
    for run_id, event in notices:
        try:
            current_app.send_task("workflows.tasks.deliver_human_notice", args=[run_id, event])
        except Exception:
            logger.warning("Could not queue the %s notice of task run %s", event, run_id, exc_info=True)


def _enqueue_callbacks(session_ids: list[str]) -> None:
    """Completion callbacks, by task name (the engine never imports the Celery tasks module)."""
    for session_id in session_ids:
        try:
            current_app.send_task("workflows.tasks.deliver_callback", args=[session_id, 1])
        except Exception:
            logger.warning("Could not queue the completion callback of session %s", session_id, exc_info=True)
