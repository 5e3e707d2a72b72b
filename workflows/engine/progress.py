"""What an agent's report means for the run it is about (contract section 4).

A run starts at the agent's first ``active`` after the dispatch and is done at the ``idle`` after that active.
Reports may arrive out of order: an ``idle`` that arrives before the ``active`` it follows is kept on the run
(``early_idle_at``/``early_result``) and completes it once that ``active`` is in. An ``idle`` between the dispatch
and the ``active`` (a heartbeat, an agent restart) is therefore never a result. A report naming the run
(``opscore_task_id``) wins: its ``idle`` completes the run whatever came before. ``error`` fails the attempt.
Dispatch failures reported by the bridge arrive here too, fenced by the dispatch they are about.
"""

from __future__ import annotations

from typing import Any

from lifecycle.models import AgentState
from opscore_project.observability import events
from workflows.engine.transitions import Transitions
from workflows.models import TASK_RUN_IN_FLIGHT, TaskReport, TaskRun, TaskRunStatus

# Reports written by the bridge (not agents) about a dispatch; ``details.dispatchRef`` is the fencing token.
DISPATCH_FAILED = "dispatch_failed"
AGENT_UNKNOWN = "agent_unknown"
DONE_STATES = (AgentState.IDLE, AgentState.FINISHED)


def apply_report(tx: Transitions, run: TaskRun, report: TaskReport) -> None:
    if report.state in (DISPATCH_FAILED, AGENT_UNKNOWN):
        _apply_dispatch_failure(tx, run, report)
        return
    if run.status not in TASK_RUN_IN_FLIGHT or run.agent_id != report.agent_pk:
        return  # late, duplicate, or about a run this agent no longer holds
    # On the agent's clock: later than its last report before the dispatch (no clock skew to allow for).
    after_dispatch = run.agent_clock_at_dispatch is None or report.reported_at > run.agent_clock_at_dispatch
    if report.explicit and report.state in DONE_STATES:
        tx.complete(run, result_of(report.details))
    elif report.state == AgentState.ACTIVE:
        if run.status == TaskRunStatus.DISPATCHED and (after_dispatch or report.explicit):
            tx.start(run, report.reported_at)
            if run.early_idle_at is not None and run.early_idle_at > report.reported_at:
                tx.complete(run, run.early_result)
    elif report.state in DONE_STATES:
        if run.status == TaskRunStatus.RUNNING:
            if run.reported_active_at is None or report.reported_at > run.reported_active_at:
                tx.complete(run, result_of(report.details))
        elif after_dispatch and (run.early_idle_at is None or report.reported_at > run.early_idle_at):
            # Not a result yet: it may be a heartbeat sent before the agent got the task. It counts once an
            # older `active` (sent after the dispatch) arrives.
            tx.change(run, early_idle_at=report.reported_at, early_result=result_of(report.details))
    elif report.state == AgentState.ERROR and (after_dispatch or report.explicit):
        tx.fail(run, TaskRunStatus.FAILED, error_of(report.details))


def _apply_dispatch_failure(tx: Transitions, run: TaskRun, report: TaskReport) -> None:
    details = report.details or {}
    if run.status != TaskRunStatus.DISPATCHED or run.dispatch_ref != details.get("dispatchRef"):
        return  # the agent already reported progress, the run ended, or it was dispatched again since
    if report.state == AGENT_UNKNOWN:
        tx.requeue(
            run,
            reason="Agent unknown to AgentKit; the task goes to another capable agent",
            event=events.TASK_REQUEUED,
        )
        tx.change(run, target_agent_id=None)
    else:
        tx.fail(run, TaskRunStatus.FAILED, str(details.get("error") or "Dispatch failed."))


def result_of(details: Any) -> Any:
    if not isinstance(details, dict):
        return None
    if "result" in details:
        return details["result"]
    return {k: v for k, v in details.items() if k not in ("opscore_task_id", "taskId")}


def error_of(details: Any) -> str:
    details = details if isinstance(details, dict) else {}
    code, message = details.get("error_code"), details.get("message")
    text = ": ".join(str(part) for part in (code, message) if part)
    return f"Agent reported error: {text}" if text else "Agent reported error."
