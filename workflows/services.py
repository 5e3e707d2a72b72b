"""Every write of the workflow engine: definitions, sessions, task runs (dispatch, progress, failure), schedules.

Concurrency rules (see STYLE.md):
- A task run is dispatched inside one short transaction that locks the run row (``skip_locked``: another
  dispatcher moves on) and claims the agent by compare-and-swap (``agent_claim_idle``), so a run is never sent
  twice and an agent never holds two runs. The bridge message is enqueued on commit.
- Everything else that moves a session forward (completion, failure, timeout, cancel, retry) locks the session
  row first, then changes task runs by compare-and-swap on their status, then frees agents. One lock order
  (session → task runs → agents) keeps these transactions from deadlocking each other.
- Duplicate, late or out-of-order reports fail the status CAS and change nothing.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from lifecycle.hooks import StateReportResult
from lifecycle.models import Agent, AgentState
from lifecycle.selectors import with_capability
from lifecycle.services import agent_claim_idle, agent_release_task
from opscore_project.errors import Conflict, NotFound, ValidationFailed
from opscore_project.lib.signing import sign
from opscore_project.observability import events
from opscore_project.observability.oplog import log_operation
from workflows import dispatching, selectors
from workflows.callback_safety import post_callback
from workflows.models import (
    SESSION_ACTIVE,
    TASK_RUN_ACTIVE,
    TASK_RUN_IN_FLIGHT,
    CallbackDelivery,
    DefinitionSource,
    SessionStatus,
    TaskRun,
    TaskRunStatus,
    WorkflowDefinition,
    WorkflowSchedule,
    WorkflowSession,
)
from workflows.references import resolve
from workflows.validation import DefinitionInvalid, content_hash, validate_definition

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 200
# Redis redelivers an unacknowledged message after the visibility timeout: never schedule a check further out.
MAX_COUNTDOWN_SECONDS = 3000
# Deadlines closer than this many sweep intervals get their own delayed check (see _check_later).
PRECISE_DEADLINE_SWEEPS = 3


# --- definitions ---------------------------------------------------------------------------------------------


def definition_create(
    *, data: Any, source: str = DefinitionSource.API, default_id: str | None = None, now: datetime | None = None
) -> tuple[WorkflowDefinition, bool]:
    """Validate and store one definition version. Returns (definition, created).

    The same id+version with identical content returns the stored row (idempotent); with different content
    raises Conflict. Raises ValidationFailed naming every fault by field path.
    """
    try:
        spec = validate_definition(data, default_id=default_id)
    except DefinitionInvalid as exc:
        raise ValidationFailed(exc.errors, message="Invalid workflow definition.") from exc
    digest = content_hash(spec)
    existing = WorkflowDefinition.objects.filter(workflow_id=spec["id"], version=spec["version"]).first()
    if existing is None:
        try:
            with transaction.atomic():
                return WorkflowDefinition.objects.create(
                    workflow_id=spec["id"],
                    version=spec["version"],
                    name=spec["name"],
                    description=spec["description"],
                    spec=spec,
                    content_hash=digest,
                    source=source,
                    created_at=now or timezone.now(),
                ), True
        except IntegrityError:  # created concurrently: compare with the winner
            existing = WorkflowDefinition.objects.get(workflow_id=spec["id"], version=spec["version"])
    if existing.content_hash != digest:
        raise Conflict(
            f"Workflow {spec['id']!r} version {spec['version']!r} already exists with different content; "
            "publish a new version.",
            errors={"version": ["This version exists with different content."]},
        )
    return existing, False


def definition_get(*, workflow_id: str, version: str | None = None) -> WorkflowDefinition:
    """The given version, or the latest one. Raises NotFound."""
    queryset = WorkflowDefinition.objects.filter(workflow_id=workflow_id)
    if version:
        queryset = queryset.filter(version=version)
    definition = queryset.order_by("-created_at", "-id").first()
    if definition is None:
        suffix = f" version {version!r}" if version else ""
        raise NotFound(f"Workflow definition {workflow_id!r}{suffix} does not exist.")
    return definition


# --- sessions ------------------------------------------------------------------------------------------------


def session_start(
    *,
    definition: WorkflowDefinition,
    agent: Agent | None = None,
    initial_payload: dict[str, Any] | None = None,
    callback_url: str = "",
    idempotency_key: str | None = None,
    schedule: WorkflowSchedule | None = None,
    now: datetime | None = None,
) -> tuple[WorkflowSession, bool]:
    """Create a session pinned to ``definition`` and its start task runs; dispatch once committed.

    With ``idempotency_key`` the same key always returns the same session. Returns (session, created).
    """
    now = now or timezone.now()
    if idempotency_key:
        existing = WorkflowSession.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            session = WorkflowSession.objects.create(
                definition=definition,
                workflow_id=definition.workflow_id,
                agent=agent,
                initial_payload=initial_payload or {},
                callback_url=callback_url or "",
                idempotency_key=idempotency_key or None,
                schedule=schedule,
                created_at=now,
            )
            log_operation(
                events.SESSION_CREATED,
                {"workflowId": definition.workflow_id, "version": definition.version},
                message=f"Session of {definition} created",
                agent_id=agent.agent_id if agent else "",
                session_id=str(session.id),
            )
            _session_advance(session, definition, now, runs=[])  # a new session has no runs yet
    except IntegrityError:
        if idempotency_key:
            return WorkflowSession.objects.get(idempotency_key=idempotency_key), False
        raise
    session_id = session.pk
    transaction.on_commit(lambda: _dispatch_soon(session_id=session_id))
    return session, True


def session_cancel(*, session_id: uuid.UUID | str, reason: str = "Cancelled by operator.") -> WorkflowSession:
    """Stop a session: no further dispatch, in-flight runs cancelled, their agents freed. Raises Conflict."""
    now = timezone.now()
    with transaction.atomic():
        session = _lock_session(session_id)
        if not session.is_active:
            raise Conflict(f"Session {session.id} already ended ({session.status}).")
        _session_end(session, SessionStatus.CANCELLED, reason, now, run_status=TaskRunStatus.CANCELLED)
    return session


def session_retry(*, session_id: uuid.UUID | str) -> WorkflowSession:
    """Re-run a failed session from its failed step(s); completed steps keep their results. Raises Conflict."""
    now = timezone.now()
    with transaction.atomic():
        session = _lock_session(session_id)
        if session.status != SessionStatus.FAILED:
            raise Conflict(f"Only a failed session can be retried (this one is {session.status}).")
        definition = selectors.definition_of(session)
        session.retry_round += 1
        session.status = SessionStatus.RUNNING if session.started_at else SessionStatus.PENDING
        session.ended_at, session.error = None, ""
        session.save(update_fields=["retry_round", "status", "ended_at", "error"])
        runs = list(session.task_runs.order_by("attempt"))
        done = _done_tasks(runs)
        latest: dict[str, TaskRun] = {}
        for run in runs:
            if not run.fallback_for:
                latest[run.task_id] = run
        next_attempt = _next_attempts(runs)
        for task_id, run in latest.items():
            if task_id not in done and run.status not in (*TASK_RUN_ACTIVE, TaskRunStatus.COMPLETED):
                _task_run_create(session, definition, task_id, now, attempt=next_attempt(task_id), runs=runs)
        log_operation(
            events.SESSION_RETRIED,
            {"round": session.retry_round},
            message=f"Session retried from its failed step(s) (round {session.retry_round})",
            session_id=str(session.id),
        )
        _session_advance(session, definition, now, runs=runs)
    transaction.on_commit(lambda: _dispatch_soon(session_id=session.pk))
    return session


def _lock_session(session_id: uuid.UUID | str) -> WorkflowSession:
    session = WorkflowSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        raise NotFound(f"Session {session_id} does not exist.")
    return session


def _done_tasks(runs: list[TaskRun]) -> set[str]:
    """Tasks whose dependants may run: completed, or stood in for by a completed fallback."""
    done: set[str] = set()
    for run in runs:
        if run.status == TaskRunStatus.COMPLETED:
            done.add(run.task_id)
            if run.fallback_for:
                done.add(run.fallback_for)
    return done


def _next_attempts(runs: list[TaskRun]):
    highest: dict[str, int] = {}
    for run in runs:
        highest[run.task_id] = max(highest.get(run.task_id, 0), run.attempt)

    def next_attempt(task_id: str) -> int:
        highest[task_id] = highest.get(task_id, 0) + 1
        return highest[task_id]

    return next_attempt


def _reference_context(session: WorkflowSession, runs: list[TaskRun]) -> dict[str, Any]:
    tasks: dict[str, Any] = {}
    for run in runs:
        if run.status == TaskRunStatus.COMPLETED:
            tasks[run.task_id] = {"result": run.result}
            if run.fallback_for and run.fallback_for not in tasks:
                tasks[run.fallback_for] = {"result": run.result}
    return {"payload": session.initial_payload, "tasks": tasks}


def _task_run_create(
    session: WorkflowSession,
    definition: WorkflowDefinition,
    task_id: str,
    now: datetime,
    *,
    attempt: int,
    runs: list[TaskRun],
    try_number: int = 1,
    fallback_for: str = "",
    ready_at: datetime | None = None,
) -> TaskRun:
    task = definition.task(task_id)
    policy = definition.policy(task_id)
    ready_at = ready_at or now
    target = session.agent
    # Tasks go to the agent the workflow was triggered for unless its *known* capabilities lack this one
    # (contract 4: unknown capabilities do not block); then they are routed by capability.
    if target is not None and target.capabilities_known and task["agentCapability"] not in target.capabilities:
        target = None
    run = TaskRun.objects.create(
        session=session,
        task_id=task_id,
        attempt=attempt,
        try_number=try_number,
        fallback_for=fallback_for,
        retry_round=session.retry_round,
        capability=task["agentCapability"],
        priority=policy["priority"],
        target_agent=target,
        parameters=resolve(task.get("parameters") or {}, _reference_context(session, runs)),
        created_at=now,
        ready_at=ready_at,
        queue_deadline=ready_at + timedelta(seconds=policy["queueTimeoutSeconds"]),
    )
    runs.append(run)
    if ready_at > now:  # a retry: dispatch it when due (a run ready now is dispatched on commit)
        _check_later(run.id, ready_at, now)
    # Queue deadlines are minutes long and need no precision: the periodic sweep enforces them.
    return run


def _session_advance(
    session: WorkflowSession, definition: WorkflowDefinition, now: datetime, runs: list[TaskRun] | None = None
) -> None:
    """Create runs for tasks whose dependencies are done; complete the session when nothing is left to do.

    Called with the session row locked.
    """
    if runs is None:
        runs = list(session.task_runs.all())
    done = _done_tasks(runs)
    started = {run.task_id for run in runs}
    next_attempt = _next_attempts(runs)
    for task_id in definition.graph.ready_tasks(done, started):
        _task_run_create(session, definition, task_id, now, attempt=next_attempt(task_id), runs=runs)
    if not any(run.status in TASK_RUN_ACTIVE for run in runs):
        _session_end(session, SessionStatus.COMPLETED, "", now)


def _session_end(
    session: WorkflowSession, status: str, error: str, now: datetime, run_status: str = TaskRunStatus.CANCELLED
) -> None:
    """End a locked session; cancel its remaining runs and free their agents; log; send the callback."""
    open_runs = list(session.task_runs.filter(status__in=TASK_RUN_ACTIVE).values_list("id", flat=True))
    if open_runs:
        reason = error or "Session ended."
        if status == SessionStatus.FAILED:
            # Runs that never left the queue are skipped; those in flight are cancelled.
            TaskRun.objects.filter(pk__in=open_runs, status=TaskRunStatus.PENDING).update(
                status=TaskRunStatus.SKIPPED, ended_at=now, error=reason
            )
        TaskRun.objects.filter(pk__in=open_runs, status__in=TASK_RUN_ACTIVE).update(
            status=run_status, ended_at=now, error=reason
        )
        for run_id in open_runs:
            agent_release_task(task_ref=str(run_id))
    session.status, session.error, session.ended_at = status, error, now
    session.save(update_fields=["status", "error", "ended_at"])
    event = {
        SessionStatus.COMPLETED: events.SESSION_COMPLETED,
        SessionStatus.FAILED: events.SESSION_FAILED,
        SessionStatus.CANCELLED: events.SESSION_CANCELLED,
    }[status]
    log_operation(
        event,
        {"workflowId": session.workflow_id, "cancelledRuns": len(open_runs)},
        level="error" if status == SessionStatus.FAILED else "info",
        message=f"Session {status}" + (f": {error}" if error else ""),
        agent_id=session.agent.agent_id if session.agent_id else "",
        session_id=str(session.id),
    )
    if session.callback_url:
        session_id = str(session.id)
        transaction.on_commit(lambda: _enqueue_callback(session_id))


def _enqueue_callback(session_id: str) -> None:
    from workflows.tasks import deliver_callback

    deliver_callback.delay(session_id, 1)


# --- dispatch ------------------------------------------------------------------------------------------------


def _free_agents(now: datetime):
    cutoff = now - timedelta(seconds=settings.OPSCORE_AGENT_STALE_SECONDS)
    return Agent.objects.filter(
        state=AgentState.IDLE, assigned_task="", deregistered_at__isnull=True, last_seen_at__gte=cutoff
    )


def _candidate_agents(*, target_agent_id: int | None, capability: str, now: datetime, limit: int = 3) -> list[Agent]:
    """Free agents able to take a run, least recently assigned first (spreads load)."""
    queryset = _free_agents(now)
    if target_agent_id is not None:
        queryset = queryset.filter(pk=target_agent_id)
    else:
        queryset = with_capability(queryset, capability)
    return list(queryset.order_by(F("last_assigned_at").asc(nulls_first=True), "id")[:limit])


def _dispatchable_runs():
    return TaskRun.objects.filter(status=TaskRunStatus.PENDING).order_by("-priority", "ready_at", "created_at")


def task_runs_dispatch(
    *, now: datetime | None = None, limit: int = DISPATCH_BATCH, session_id: uuid.UUID | None = None
) -> int:
    """Dispatch waiting task runs (highest priority, then oldest) to free capable agents. Returns how many.

    ``session_id`` limits it to one session's runs (its new runs, right after they were created). Safe to run
    anywhere at any time, concurrently: each run is claimed in its own short transaction.
    """
    now = now or timezone.now()
    ready = _dispatchable_runs().filter(ready_at__lte=now)
    if session_id is not None:
        ready = ready.filter(session_id=session_id)
    candidates = list(ready.values_list("id", "target_agent_id", "capability")[:limit])
    exhausted: set[tuple[int | None, str]] = set()
    dispatched = 0
    for run_id, target_agent_id, capability in candidates:
        key = (target_agent_id, capability)
        if key in exhausted:
            continue
        for _ in range(3):  # the agents read may be claimed by concurrent dispatchers meanwhile: read again
            agents = _candidate_agents(target_agent_id=target_agent_id, capability=capability, now=now)
            if not agents:
                exhausted.add(key)
                break
            outcome = _task_run_dispatch(run_id, agents, now)
            if outcome == "dispatched":
                dispatched += 1
            if outcome != "agent_taken":
                break
    return dispatched


def task_runs_dispatch_to_agent(*, agent_pk: int, now: datetime | None = None) -> bool:
    """Give a free agent the best waiting run it can take (event-driven path: the agent just became idle)."""
    return _dispatch_to_agent(agent_pk, now or timezone.now()) is not None


def _dispatch_to_agent(agent_pk: int, now: datetime) -> uuid.UUID | None:
    """The run the free agent was given, or None."""
    agent = _free_agents(now).filter(pk=agent_pk).first()
    if agent is None:
        return None
    routes = Q(target_agent_id=agent.pk)
    if agent.capabilities_known and agent.capabilities:
        routes |= Q(target_agent__isnull=True, capability__in=list(agent.capabilities))
    run_ids = list(_dispatchable_runs().filter(routes, ready_at__lte=now).values_list("id", flat=True)[:5])
    for run_id in run_ids:
        outcome = _task_run_dispatch(run_id, [agent], now)
        if outcome == "dispatched":
            return run_id
        if outcome == "agent_taken":
            return None
    return None


def _task_run_dispatch(run_id: uuid.UUID, agents: list[Agent], now: datetime) -> str:
    """Claim one pending run and one of ``agents`` for it; 'dispatched', 'run_gone' or 'agent_taken'."""
    with transaction.atomic():
        run = (
            TaskRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("session")
            .filter(pk=run_id, status=TaskRunStatus.PENDING, ready_at__lte=now)
            .first()
        )
        if run is None:
            return "run_gone"  # dispatched, cancelled or locked by another dispatcher
        for agent in agents:
            if agent_claim_idle(agent_pk=agent.pk, task_ref=str(run.id), now=now):
                break
        else:
            return "agent_taken"
        session = run.session
        policy = selectors.definition_of(session).policy(run.task_id) if run.task_id else {}
        timeout_at = now + timedelta(seconds=policy["timeoutSeconds"])
        dispatch_ref = f"{run.pk}:{run.dispatch_count + 1}"
        TaskRun.objects.filter(pk=run.pk, status=TaskRunStatus.PENDING).update(
            status=TaskRunStatus.DISPATCHED,
            agent=agent,
            dispatched_at=now,
            timeout_at=timeout_at,
            dispatch_ref=dispatch_ref,
            dispatch_count=run.dispatch_count + 1,
        )
        log_operation(
            events.TASK_DISPATCHED,
            {"taskId": run.task_id, "attempt": run.attempt, "capability": run.capability},
            message=f"Task {run.task_id} (attempt {run.attempt}) dispatched to {agent.agent_id}",
            agent_id=agent.agent_id,
            session_id=str(session.pk),
            task_id=str(run.pk),
        )
        dispatching.send_task(
            dispatch_ref=dispatch_ref,
            task_run_id=str(run.pk),
            agent_id=agent.agent_id,
            task_name=run.capability,
            parameters=run.parameters,
            session_id=str(session.pk),
        )
        _check_later(run.pk, timeout_at, now)
    if session.status == SessionStatus.PENDING:
        # After the commit, not inside it: this transaction holds a task run lock, and transactions that hold
        # the session lock wait for task run locks (cancel, failure) — waiting here for the session would deadlock.
        _session_mark_started(session, agent.agent_id, now)
    return "dispatched"


def _session_mark_started(session: WorkflowSession, agent_id: str, now: datetime) -> None:
    with transaction.atomic():
        if WorkflowSession.objects.filter(pk=session.pk, status=SessionStatus.PENDING).update(
            status=SessionStatus.RUNNING, started_at=now
        ):
            log_operation(
                events.SESSION_STARTED,
                {"workflowId": session.workflow_id},
                message="Session started (first task dispatched)",
                agent_id=agent_id,
                session_id=str(session.pk),
            )


def _dispatch_soon(session_id: uuid.UUID | None = None) -> None:
    """After a commit that created runs or freed agents: dispatch now, in this process (errors: the sweep)."""
    try:
        task_runs_dispatch(session_id=session_id)
    except Exception:
        logger.exception("Dispatch after commit failed; the sweep will retry")


def _check_later(run_id: uuid.UUID, at: datetime | None, now: datetime) -> None:
    """Ask a worker to look at a run when a short deadline passes (a retry's backoff, a short timeout).

    Deadlines further out than a few sweep intervals are left to the periodic sweep (it reads the indexed
    deadline columns): one delayed message per dispatch would cost more than the precision is worth.
    """
    if at is None:
        return
    delay = max((at - now).total_seconds(), 0)
    if delay > PRECISE_DEADLINE_SWEEPS * settings.OPSCORE_WORKFLOW_SWEEP_SECONDS:
        return
    countdown = min(delay + 0.05, MAX_COUNTDOWN_SECONDS)

    def enqueue() -> None:
        from workflows.tasks import check_task_run

        try:
            check_task_run.apply_async(args=[str(run_id)], countdown=countdown)
        except Exception:  # noqa: BLE001 - the periodic sweep is the safety net
            logger.warning("Could not schedule a check of task run %s; the sweep will catch it", run_id)

    transaction.on_commit(enqueue)


# --- progress from state reports -----------------------------------------------------------------------------


def _explicit_task_ref(details: dict[str, Any]) -> str:
    if not isinstance(details, dict):
        return ""
    for key in ("opscore_task_id", "taskId"):
        value = details.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _as_uuid(value: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def state_report_received(result: StateReportResult) -> None:
    """The lifecycle state listener: turn an agent's reports into task progress, then dispatch.

    Cheap by construction (the state endpoint must sustain thousands of reports per second): a report from an
    agent with nothing assigned costs no query unless it says ``idle``, and then one indexed EXISTS.
    """
    # A task id in the details names the run explicitly (contract 4) and wins; otherwise the run the engine
    # assigned to the agent, returned by the state write itself (no query).
    explicit_id = _as_uuid(_explicit_task_ref(result.details))
    run_id = explicit_id or (_as_uuid(result.assigned_task) if result.assigned_task else None)
    if run_id is None:
        if result.state != AgentState.IDLE or not result.became_current:
            return
        now = timezone.now()
        waiting = result.probes.get(selectors.TASK_RUN_WAITING_PROBE)
        if waiting if waiting is not None else selectors.task_run_waiting_exists(now=now):
            task_runs_dispatch_to_agent(agent_pk=result.agent_pk, now=now)
        return
    if not result.became_current or not result.stored:
        return  # out of order, or an exact duplicate: already handled
    ended = task_run_progress(
        run_id=run_id,
        agent_pk=result.agent_pk,
        state=result.state,
        details=result.details,
        reported_at=result.reported_at,
        explicit=explicit_id is not None,
    )
    if ended is not None:
        # The freed agent (if idle) takes the best run waiting for it (priority, then age: maybe this
        # session's next step); then the session's other new runs go to other free agents. When the completion
        # created nothing, or only the run the agent just took, there is nothing more to dispatch here.
        taken = _dispatch_to_agent(result.agent_pk, timezone.now()) if result.state == AgentState.IDLE else None
        if ended.new_runs is None or any(run_id != taken for run_id in ended.new_runs):
            _dispatch_soon(session_id=ended.session_id)


@dataclass(frozen=True)
class RunEnded:
    """A run that ended on a state report: its session, and the runs now ready that its end created (None: not
    known, e.g. after a failure that may have queued a retry or fallback)."""

    session_id: uuid.UUID
    new_runs: list[uuid.UUID] | None


def task_run_progress(
    *,
    run_id: uuid.UUID,
    agent_pk: int,
    state: str,
    details: dict[str, Any],
    reported_at: datetime | None = None,
    explicit: bool = False,
) -> RunEnded | None:
    """Apply one current state report to the task run in flight on the agent; what ended, if the run did.

    ``active`` → running; ``idle`` (or ``finished``) → completed with the result; ``error`` → a failed attempt.
    Every change is a compare-and-swap on the run's status, so a report can never complete a run twice.
    """
    now = timezone.now()
    run = (
        TaskRun.objects.filter(pk=run_id, agent_id=agent_pk)
        .select_related("agent")
        .only("id", "session_id", "status", "task_id", "attempt", "dispatched_at", "agent__agent_id")
        .first()
    )
    if run is None or run.status not in TASK_RUN_IN_FLIGHT:
        return None
    if state == AgentState.ACTIVE:
        with transaction.atomic():
            changed = TaskRun.objects.filter(pk=run_id, status=TaskRunStatus.DISPATCHED).update(
                status=TaskRunStatus.RUNNING, started_at=now
            )
            if changed:
                log_operation(
                    events.TASK_RUNNING,
                    {"taskId": run.task_id},
                    message=f"Task {run.task_id} running (agent reported active)",
                    agent_id=run.agent.agent_id,
                    session_id=str(run.session_id),
                    task_id=str(run_id),
                )
        return None
    if state in (AgentState.IDLE, AgentState.FINISHED):
        # An idle ends a run we saw start. It also ends one still "dispatched" when it was sent after the
        # dispatch (the SDK never retries, so the agent's active report may have been lost) or when it names the
        # task explicitly; an idle timestamped before the dispatch is not about this task.
        sent_after_dispatch = (
            reported_at is not None and run.dispatched_at is not None and reported_at > run.dispatched_at
        )
        if run.status == TaskRunStatus.DISPATCHED and not (explicit or sent_after_dispatch):
            return None
        created = _task_run_complete(run, _result_of(details), TASK_RUN_IN_FLIGHT, now)
        if created is None:
            return None
        ready = [new.pk for new in created if new.status == TaskRunStatus.PENDING and new.ready_at <= now]
        return RunEnded(run.session_id, ready)
    elif state == AgentState.ERROR:
        ended = _task_run_fail(
            run_id, run.session_id, TaskRunStatus.FAILED, _error_of(details), now, from_statuses=TASK_RUN_IN_FLIGHT
        )
        return RunEnded(run.session_id, None) if ended else None
    return None


def _result_of(details: dict[str, Any]) -> Any:
    if not isinstance(details, dict):
        return None
    if "result" in details:
        return details["result"]
    return {k: v for k, v in details.items() if k not in ("opscore_task_id", "taskId")}


def _error_of(details: dict[str, Any]) -> str:
    details = details if isinstance(details, dict) else {}
    code, message = details.get("error_code"), details.get("message")
    text = ": ".join(str(part) for part in (code, message) if part)
    return f"Agent reported error: {text}" if text else "Agent reported error."


def _task_run_complete(run: TaskRun, result: Any, from_statuses: tuple, now: datetime) -> list[TaskRun] | None:
    """Complete ``run`` (loaded with task_id, attempt, session_id and its agent) and advance its session.

    None if the run was no longer in ``from_statuses``; else the runs the completion created.
    """
    with transaction.atomic():
        session = _lock_session(run.session_id)
        changed = TaskRun.objects.filter(pk=run.pk, status__in=from_statuses).update(
            status=TaskRunStatus.COMPLETED, result=result, ended_at=now
        )
        if not changed:
            return None
        agent_release_task(task_ref=str(run.pk))
        log_operation(
            events.TASK_COMPLETED,
            {"taskId": run.task_id, "attempt": run.attempt},
            message=f"Task {run.task_id} completed",
            agent_id=run.agent.agent_id if run.agent else "",
            session_id=str(run.session_id),
            task_id=str(run.pk),
        )
        if not session.is_active:
            return []
        runs = list(session.task_runs.all())
        known = {existing.pk for existing in runs}
        _session_advance(session, selectors.definition_of(session), now, runs=runs)
    return [created for created in runs if created.pk not in known]


def _task_run_fail(
    run_id: uuid.UUID,
    session_id: uuid.UUID,
    status: str,
    error: str,
    now: datetime,
    *,
    from_statuses: tuple,
    allow_retry: bool = True,
    ref: str | None = None,
) -> bool:
    """End one attempt as failed/timed out, then retry (with backoff), fall back, or fail the session.

    With ``ref``, only while that dispatch is still the run's current one.
    """
    with transaction.atomic():
        session = _lock_session(session_id)
        attempt = TaskRun.objects.filter(pk=run_id, status__in=from_statuses)
        if ref is not None:
            attempt = attempt.filter(dispatch_ref=ref)
        changed = attempt.update(status=status, error=error, ended_at=now)
        if not changed:
            return False
        run = TaskRun.objects.select_related("agent").get(pk=run_id)
        agent_release_task(task_ref=str(run_id))
        agent_id = run.agent.agent_id if run.agent else ""
        log_operation(
            events.TASK_TIMED_OUT if status == TaskRunStatus.TIMED_OUT else events.TASK_FAILED,
            {"taskId": run.task_id, "attempt": run.attempt, "error": error},
            level="warning",
            message=f"Task {run.task_id} attempt {run.attempt} {status}: {error}",
            agent_id=agent_id,
            session_id=str(session_id),
            task_id=str(run_id),
        )
        if session.is_active:
            _after_failed_attempt(session, run, error, now, allow_retry=allow_retry)
    return True


def _after_failed_attempt(
    session: WorkflowSession, run: TaskRun, error: str, now: datetime, *, allow_retry: bool
) -> None:
    definition = selectors.definition_of(session)
    policy = definition.policy(run.task_id)
    runs = list(session.task_runs.all())
    next_attempt = _next_attempts(runs)
    if allow_retry and run.try_number <= policy["maxRetries"]:
        delay = float(policy["retryBackoffSeconds"]) * 2 ** (run.try_number - 1)
        retry = _task_run_create(
            session,
            definition,
            run.task_id,
            now,
            attempt=next_attempt(run.task_id),
            runs=runs,
            try_number=run.try_number + 1,
            fallback_for=run.fallback_for,
            ready_at=now + timedelta(seconds=delay),
        )
        log_operation(
            events.TASK_RETRIED,
            {"taskId": run.task_id, "attempt": retry.attempt, "delaySeconds": delay},
            message=f"Task {run.task_id} will be retried in {delay:g}s (attempt {retry.attempt})",
            session_id=str(session.pk),
            task_id=str(retry.pk),
        )
        return
    original = run.fallback_for or run.task_id
    fallback = policy.get("fallbackTaskId")
    already = {r.task_id for r in runs if r.fallback_for == original and r.retry_round == session.retry_round}
    if fallback and fallback not in already and fallback != original:
        fallback_run = _task_run_create(
            session, definition, fallback, now, attempt=next_attempt(fallback), runs=runs, fallback_for=original
        )
        log_operation(
            events.TASK_FALLBACK,
            {"taskId": original, "fallbackTaskId": fallback},
            level="warning",
            message=f"Task {original} failed for good; running fallback {fallback}",
            session_id=str(session.pk),
            task_id=str(fallback_run.pk),
        )
        return
    _session_end(session, SessionStatus.FAILED, f"Task {run.task_id} failed: {error}", now)


# --- dispatch outcomes (bridge) ------------------------------------------------------------------------------


def dispatch_outcome_received(outcome: Any) -> None:
    """The bridge's dispatch listener: record AgentKit's acceptance, or fail/re-route the attempt.

    Outcomes may come twice (the bridge re-announces after a crash) or late (for an earlier dispatch of a run
    since re-routed): only the outcome of the run's current dispatch, while it is still dispatched, counts.
    """
    ref = str(outcome.dispatch_ref or "")
    run_id = _as_uuid(ref.split(":", 1)[0])
    if run_id is None:
        return
    current = TaskRun.objects.filter(pk=run_id, dispatch_ref=ref)
    if outcome.accepted:
        current.filter(accepted_at__isnull=True).update(accepted_at=outcome.finished_at)
        return
    run = current.only("id", "session_id", "status").first()
    if run is None or run.status != TaskRunStatus.DISPATCHED:
        return  # the agent already reported progress, the run ended, or this dispatch is not the current one
    now = timezone.now()
    if outcome.error_kind == "agent_unknown":
        if _task_run_requeue(run_id, run.session_id, outcome, now):
            _dispatch_soon()
        return
    code = f" (HTTP {outcome.status_code})" if outcome.status_code else ""
    error = f"Dispatch failed after {outcome.attempts} attempt(s): {outcome.error_kind}{code}: {outcome.error}"
    _task_run_fail(
        run_id, run.session_id, TaskRunStatus.FAILED, error, now, from_statuses=(TaskRunStatus.DISPATCHED,), ref=ref
    )


def _task_run_requeue(run_id: uuid.UUID, session_id: uuid.UUID, outcome: Any, now: datetime) -> bool:
    """AgentKit no longer knows the agent (contract 3): send the run to another capable agent, same attempt."""
    with transaction.atomic():
        _lock_session(session_id)
        changed = TaskRun.objects.filter(
            pk=run_id, status=TaskRunStatus.DISPATCHED, dispatch_ref=outcome.dispatch_ref
        ).update(
            status=TaskRunStatus.PENDING,
            agent=None,
            target_agent=None,
            dispatched_at=None,
            accepted_at=None,
            timeout_at=None,
        )
        if not changed:
            return False
        agent_release_task(task_ref=str(run_id))
        log_operation(
            events.TASK_REQUEUED,
            {"error": outcome.error},
            level="warning",
            message="Agent unknown to AgentKit; the task goes to another capable agent",
            agent_id=outcome.agent_id,
            session_id=str(session_id),
            task_id=str(run_id),
        )
    return True


# --- deadlines -----------------------------------------------------------------------------------------------


def task_run_check(*, run_id: uuid.UUID | str, now: datetime | None = None) -> None:
    """Act on one run's deadlines: timed out in flight, waited too long for an agent, or a retry now due."""
    now = now or timezone.now()
    run = TaskRun.objects.filter(pk=run_id).first()
    if run is None:
        return
    if run.status in TASK_RUN_IN_FLIGHT and run.timeout_at and run.timeout_at <= now:
        _task_run_fail(
            run.pk,
            run.session_id,
            TaskRunStatus.TIMED_OUT,
            "Timed out: no result from the agent before the task's timeout.",
            now,
            from_statuses=TASK_RUN_IN_FLIGHT,
        )
        _dispatch_soon()
    elif run.status == TaskRunStatus.PENDING and run.queue_deadline and run.queue_deadline <= now:
        _task_run_fail(
            run.pk,
            run.session_id,
            TaskRunStatus.FAILED,
            "Queue timeout: no free agent able to run the task became available in time.",
            now,
            from_statuses=(TaskRunStatus.PENDING,),
            allow_retry=False,
        )
        _dispatch_soon()
    elif run.status == TaskRunStatus.PENDING and run.ready_at <= now:
        task_runs_dispatch(now=now, session_id=run.session_id)


def workflows_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Safety net run every few seconds: expire overdue runs, then dispatch everything dispatchable."""
    now = now or timezone.now()
    overdue = list(
        TaskRun.objects.filter(status__in=TASK_RUN_IN_FLIGHT, timeout_at__lte=now).values_list("id", flat=True)[:500]
    )
    queued_out = list(
        TaskRun.objects.filter(status=TaskRunStatus.PENDING, queue_deadline__lte=now).values_list("id", flat=True)[:500]
    )
    for run_id in [*overdue, *queued_out]:
        task_run_check(run_id=run_id, now=now)
    dispatched = task_runs_dispatch(now=now)
    return {"timedOut": len(overdue), "queueTimedOut": len(queued_out), "dispatched": dispatched}


@dataclass(frozen=True)
class ScheduleRun:
    session: WorkflowSession | None
    skipped_reason: str = ""


def workflow_schedule_run(*, schedule_id: int, now: datetime | None = None) -> ScheduleRun:
    """Start one scheduled run, unless the previous one is still running and overlap is not allowed."""
    now = now or timezone.now()
    with transaction.atomic():
        schedule = WorkflowSchedule.objects.select_for_update().filter(pk=schedule_id).first()
        if schedule is None or not schedule.enabled:
            return ScheduleRun(None, "disabled or deleted")
        if not schedule.allow_overlap and schedule.sessions.filter(status__in=SESSION_ACTIVE).exists():
            log_operation(
                events.SCHEDULE_SKIPPED,
                {"schedule": schedule.name},
                message=f"Schedule {schedule.name!r} skipped: its previous run is still going",
            )
            return ScheduleRun(None, "previous run still active")
        definition = definition_get(workflow_id=schedule.workflow_id, version=schedule.version or None)
        session, _ = session_start(
            definition=definition,
            agent=schedule.agent,
            initial_payload=schedule.initial_payload,
            schedule=schedule,
            now=now,
        )
        schedule.last_run_at = now
        schedule.save(update_fields=["last_run_at"])
    return ScheduleRun(session)


def workflow_schedule_problems(*, cron: str, interval_seconds: int | None) -> dict[str, list[str]]:
    """Field errors of a schedule's timing (exactly one of cron / interval; cron has five fields)."""
    if bool(cron.strip()) == bool(interval_seconds):
        return {"cron": ["Give either a cron expression or an interval, not both or neither."]}
    if cron.strip() and len(cron.split()) != 5:
        return {"cron": ["Use five fields: minute hour day-of-month month day-of-week."]}
    return {}


def workflow_schedule_save(*, schedule: WorkflowSchedule) -> WorkflowSchedule:
    """Save a schedule and create/update its django-celery-beat PeriodicTask. Raises ValidationFailed."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    problems = workflow_schedule_problems(cron=schedule.cron, interval_seconds=schedule.interval_seconds)
    if problems:
        raise ValidationFailed(problems)
    if not WorkflowDefinition.objects.filter(workflow_id=schedule.workflow_id).exists():
        raise ValidationFailed({"workflow_id": [f"No workflow definition {schedule.workflow_id!r}."]})
    with transaction.atomic():
        schedule.save()
        task = schedule.periodic_task or PeriodicTask(name=f"Workflow schedule #{schedule.pk}")
        task.name = f"Workflow schedule #{schedule.pk}: {schedule.name}"[:200]
        task.task = "workflows.tasks.run_scheduled_workflow"
        task.args = json.dumps([schedule.pk])
        task.enabled = schedule.enabled
        task.description = f"Runs workflow {schedule.workflow_id!r} (managed by the workflow schedule)."
        if schedule.cron.strip():
            minute, hour, day_of_month, month_of_year, day_of_week = schedule.cron.split()
            task.crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                day_of_week=day_of_week,
                timezone="UTC",
            )
            task.interval = None
            task.expire_seconds = 60
        else:
            task.interval, _ = IntervalSchedule.objects.get_or_create(
                every=schedule.interval_seconds, period=IntervalSchedule.SECONDS
            )
            task.crontab = None
            task.expire_seconds = max(1, min(schedule.interval_seconds, 300))
        task.save()
        if schedule.periodic_task_id != task.pk:
            schedule.periodic_task = task
            schedule.save(update_fields=["periodic_task"])
    return schedule


def workflow_schedule_delete(*, schedule: WorkflowSchedule) -> None:
    """Delete a schedule and its PeriodicTask."""
    with transaction.atomic():
        task = schedule.periodic_task
        schedule.delete()
        if task is not None:
            task.delete()


# --- completion callbacks ------------------------------------------------------------------------------------


def callback_deliver(*, session_id: str, attempt: int) -> CallbackDelivery | None:
    """POST the ended session's summary to its callbackUrl once, signed; record the attempt.

    Signed like the AgentKit webhook: ``X-OpsCore-Signature`` = hex HMAC-SHA256 of ``timestamp + "." + body``
    keyed with OPSCORE_CALLBACK_SECRET (else OPSCORE_WEBHOOK_SECRET). Returns None if already attempted.
    """
    from workflows.selectors import session_detail, session_get

    session = session_get(session_id=session_id)
    if session is None or not session.callback_url or session.is_active:
        return None
    if CallbackDelivery.objects.filter(session=session, attempt=attempt).exists():
        return None  # a redelivered message: this attempt already happened
    body = json.dumps({"event": "session.ended", "session": session_detail(session)}, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-OpsCore-Timestamp": timestamp, "User-Agent": "Ops-Core"}
    secret = settings.OPSCORE_CALLBACK_SECRET or settings.OPSCORE_WEBHOOK_SECRET
    if secret:
        headers["X-OpsCore-Signature"] = sign(secret, timestamp, body)
    started = time.monotonic()
    # SSRF rules, pinned address, no redirects, capped answer; a short reason, never the remote body.
    result = post_callback(
        session.callback_url, body=body, headers=headers, timeout=settings.OPSCORE_CALLBACK_TIMEOUT_SECONDS
    )
    status_code, error = result.status_code, result.error
    delivery, _ = CallbackDelivery.objects.get_or_create(
        session=session,
        attempt=attempt,
        defaults={
            "url": session.callback_url,
            "status_code": status_code,
            "success": not error,
            "error": error,
            "duration_ms": int((time.monotonic() - started) * 1000),
        },
    )
    if error and attempt >= settings.OPSCORE_CALLBACK_MAX_ATTEMPTS:
        log_operation(
            events.CALLBACK_FAILED,
            {"url": session.callback_url, "attempts": attempt, "error": error},
            level="error",
            message=f"Completion callback failed for good after {attempt} attempt(s): {error}",
            session_id=str(session.id),
        )
    return delivery
