"""Pure decisions about one session, made on its runs in memory: what becomes ready, what a failure leads to.

Nothing here writes: new runs are returned unsaved (with their ids) and appended to ``runs``; the caller writes
them in bulk (``transitions.Transitions.write``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from workflows.models import (
    TASK_RUN_ACTIVE,
    TASK_RUN_AGENT_WORK,
    SessionStatus,
    TaskKind,
    TaskRun,
    TaskRunStatus,
    WorkflowDefinition,
    WorkflowSession,
)
from workflows.references import resolve, text_of


def done_tasks(runs: list[TaskRun]) -> set[str]:
    """Tasks whose dependants may run: completed, or stood in for by a completed fallback."""
    done: set[str] = set()
    for run in runs:
        if run.status == TaskRunStatus.COMPLETED:
            done.add(run.task_id)
            if run.fallback_for:
                done.add(run.fallback_for)
    return done


def attempt_counter(runs: list[TaskRun]) -> Callable[[str], int]:
    """``next_attempt(task_id)``: the task's next attempt number in this session."""
    highest: dict[str, int] = {}
    for run in runs:
        highest[run.task_id] = max(highest.get(run.task_id, 0), run.attempt)

    def next_attempt(task_id: str) -> int:
        highest[task_id] = highest.get(task_id, 0) + 1
        return highest[task_id]

    return next_attempt


def reference_context(session: WorkflowSession, runs: list[TaskRun]) -> dict[str, Any]:
    """What ``{{ payload.x }}`` and ``{{ tasks.id.result.y }}`` read."""
    tasks: dict[str, Any] = {}
    for run in runs:
        # A rejected approval's answer is readable too: its onReject task says why.
        if run.status in (TaskRunStatus.COMPLETED, TaskRunStatus.REJECTED):
            tasks[run.task_id] = {"result": run.result}
            if run.fallback_for and run.fallback_for not in tasks:
                tasks[run.fallback_for] = {"result": run.result}
    return {"payload": session.initial_payload, "tasks": tasks}


def build_run(
    session: WorkflowSession,
    definition: WorkflowDefinition,
    task_id: str,
    now: datetime,
    *,
    runs: list[TaskRun],
    attempt: int,
    try_number: int = 1,
    fallback_for: str = "",
    ready_at: datetime | None = None,
) -> TaskRun:
    """A new (unsaved) pending run of ``task_id``, its parameters resolved; appended to ``runs``."""
    task = definition.task(task_id)
    policy = definition.policy(task_id)
    ready_at = ready_at or now
    if task.get("kind", TaskKind.AGENT) != TaskKind.AGENT:
        return _build_human_run(session, task, now, runs=runs, attempt=attempt, try_number=try_number)
    target = session.agent
    # Tasks go to the agent the workflow was triggered for unless its *known* capabilities lack this one
    # (contract 4: unknown capabilities do not block); then they are routed by capability.
    capability = task.get("agentCapability") or ""
    if target is not None and capability and target.capabilities_known and capability not in target.capabilities:
        target = None
    run = TaskRun(
        session=session,
        task_id=task_id,
        attempt=attempt,
        try_number=try_number,
        fallback_for=fallback_for,
        retry_round=session.retry_round,
        capability=capability,
        priority=policy["priority"],
        target_agent=target,
        parameters=resolve(task.get("parameters") or {}, reference_context(session, runs)),
        created_at=now,
        ready_at=ready_at,
        queue_deadline=ready_at + timedelta(seconds=policy["queueTimeoutSeconds"]),
    )
    runs.append(run)
    return run


def _build_human_run(
    session: WorkflowSession, task: dict[str, Any], now: datetime, *, runs: list[TaskRun], attempt: int, try_number: int
) -> TaskRun:
    """An approval or input task waits for a person from the start: never pending, never dispatched, no agent."""
    timeout = task.get("timeoutSeconds")  # only the task's own: an agent's default timeout does not apply to people
    remind = task.get("remindAfterSeconds")
    run = TaskRun(
        session=session,
        task_id=task["taskId"],
        kind=task["kind"],
        attempt=attempt,
        try_number=try_number,
        retry_round=session.retry_round,
        status=TaskRunStatus.WAITING_FOR_INPUT,
        capability="",
        prompt=text_of(resolve(task.get("prompt") or "", reference_context(session, runs))),
        assignees=list(task.get("assignees") or []),
        created_at=now,
        ready_at=now,
        timeout_at=now + timedelta(seconds=timeout) if timeout else None,
        remind_at=now + timedelta(seconds=remind) if remind else None,
    )
    runs.append(run)
    return run


def waiting_status(session: WorkflowSession, runs: list[TaskRun]) -> str | None:
    """The status an active session should show now, when it differs from its own: ``waiting_for_input`` when
    a person is its only hold-up, back to ``running`` (or ``pending``) once agent work is queued again."""
    if session.status not in (SessionStatus.PENDING, SessionStatus.RUNNING, SessionStatus.WAITING_FOR_INPUT):
        return None
    agent_work = any(run.status in TASK_RUN_AGENT_WORK for run in runs)
    waiting = any(run.status == TaskRunStatus.WAITING_FOR_INPUT for run in runs)
    if waiting and not agent_work:
        wanted = SessionStatus.WAITING_FOR_INPUT
    elif session.status == SessionStatus.WAITING_FOR_INPUT:
        wanted = SessionStatus.RUNNING
    else:
        return None
    return wanted if wanted != session.status else None


def ready_runs(
    session: WorkflowSession, definition: WorkflowDefinition, runs: list[TaskRun], now: datetime
) -> list[TaskRun]:
    """New runs for every task whose dependencies are done and that has not started yet."""
    done = done_tasks(runs)
    started = {run.task_id for run in runs}
    next_attempt = attempt_counter(runs)
    return [
        build_run(session, definition, task_id, now, runs=runs, attempt=next_attempt(task_id))
        for task_id in definition.graph.ready_tasks(done, started)
    ]


def nothing_left(runs: list[TaskRun]) -> bool:
    return not any(run.status in TASK_RUN_ACTIVE for run in runs)


@dataclass(frozen=True)
class FailurePlan:
    """What a failed attempt leads to: ``retry`` (``run`` due after ``delay``), ``fallback`` (``run``) or ``fail``."""

    kind: str
    run: TaskRun | None = None
    delay: float = 0.0


def after_failure(
    session: WorkflowSession,
    definition: WorkflowDefinition,
    failed: TaskRun,
    runs: list[TaskRun],
    now: datetime,
    *,
    allow_retry: bool = True,
) -> FailurePlan:
    """Retry with exponential backoff while the budget lasts, then the fallback task once, else fail."""
    policy = definition.policy(failed.task_id)
    next_attempt = attempt_counter(runs)
    if allow_retry and failed.try_number <= policy["maxRetries"]:
        delay = float(policy["retryBackoffSeconds"]) * 2 ** (failed.try_number - 1)
        retry = build_run(
            session,
            definition,
            failed.task_id,
            now,
            runs=runs,
            attempt=next_attempt(failed.task_id),
            try_number=failed.try_number + 1,
            fallback_for=failed.fallback_for,
            ready_at=now + timedelta(seconds=delay),
        )
        return FailurePlan("retry", retry, delay)
    original = failed.fallback_for or failed.task_id
    fallback = policy.get("fallbackTaskId")
    already = {r.task_id for r in runs if r.fallback_for == original and r.retry_round == session.retry_round}
    if fallback and fallback not in already and fallback != original:
        run = build_run(
            session, definition, fallback, now, runs=runs, attempt=next_attempt(fallback), fallback_for=original
        )
        return FailurePlan("fallback", run)
    return FailurePlan("fail")
