"""The engine's hooks into lifecycle (state reports) and the bridge (dispatch outcomes).

A listener failure must not turn an accepted state report into a 500 (the report is already stored and the
SDK does not retry): errors are logged, and the periodic sweep repairs whatever was left undone.
"""

from __future__ import annotations

import logging
from typing import Any

from lifecycle.hooks import StateReportResult
from workflows import services

logger = logging.getLogger(__name__)


def on_state_report(result: StateReportResult) -> None:
    try:
        services.state_report_received(result)
    except Exception:
        logger.exception("Workflow progress from a state report of %s failed", result.agent_id)


def on_dispatch_outcome(outcome: Any) -> None:
    try:
        services.dispatch_outcome_received(outcome)
    except Exception:
        logger.exception("Handling the dispatch outcome of %s failed", getattr(outcome, "dispatch_ref", "?"))
