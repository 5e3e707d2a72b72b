"""The engine's hooks into lifecycle (state reports) and the bridge (dispatch outcomes).

A listener failure must not turn an accepted state report into a 500 (the report is already stored and the
SDK does not retry): errors are logged. Dispatch outcomes are recorded in the relay's transaction, so a failure
there rolls the record back and the relay sends again.
"""

from __future__ import annotations

import logging
import uuid

from agentkit_bridge.hooks import DispatchOutcome
from lifecycle.hooks import StateReportResult
from workflows.engine import progress
from workflows.engine.reports import engine_wake, state_report_received, task_report_enqueue

logger = logging.getLogger(__name__)


def on_state_report(result: StateReportResult) -> None:
    try:
        state_report_received(result)
    except Exception:
        logger.exception("Workflow progress from a state report of %s failed", result.agent_id)


def on_dispatch_outcomes(outcomes: list[DispatchOutcome]) -> None:
    """Failed dispatches become reports for the engine, fenced by their dispatch ref (an outcome for a dispatch
    that is no longer current changes nothing). Accepted ones need nothing here: the engine reads the acceptance
    time from the dispatch attempts when the run moves on, so the relay never writes task runs."""
    failed = [o for o in outcomes if not o.accepted]
    for outcome in failed:
        try:
            run_id = uuid.UUID(outcome.dispatch_ref.split(":", 1)[0])
        except ValueError:
            continue
        code = f" (HTTP {outcome.status_code})" if outcome.status_code else ""
        error = f"Dispatch failed after {outcome.attempts} attempt(s): {outcome.error_kind}{code}: {outcome.error}"
        task_report_enqueue(
            run_id=run_id,
            agent_pk=0,
            state=progress.AGENT_UNKNOWN if outcome.error_kind == "agent_unknown" else progress.DISPATCH_FAILED,
            reported_at=outcome.finished_at,
            details={"dispatchRef": outcome.dispatch_ref, "error": error},
            explicit=False,
            now=outcome.finished_at,
        )
    if failed:
        engine_wake()
