"""Celery tasks: the periodic AgentKit sync and task dispatch. Thin: they call services."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from agentkit_bridge import client, services
from agentkit_bridge.exceptions import AgentKitError
from agentkit_bridge.hooks import DispatchOutcome, notify_dispatch_listeners
from agentkit_bridge.models import DispatchAttempt, DispatchOutcomeKind

logger = logging.getLogger(__name__)

# Redis redelivers an unacknowledged message after the broker's visibility timeout (3600 s): keep every
# countdown well below it.
MAX_BACKOFF_SECONDS = 300.0


@shared_task(name="agentkit_bridge.tasks.sync_agents", expires=settings.AGENTKIT_POLL_INTERVAL, ignore_result=True)
def sync_agents() -> dict[str, Any]:
    """Poll AgentKit's agent listing once (scheduled every AGENTKIT_POLL_INTERVAL by django-celery-beat)."""
    run = services.sync_agents_run()
    return {"syncRunId": run.pk, "outcome": run.outcome}


def backoff_seconds(attempt: int, *, base: float | None = None, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter before attempt ``attempt + 1``: base * 2^(attempt-1), between half and all
    of it (so retries of many dispatches spread out), at least AgentKit's Retry-After, at most 300 s."""
    base = settings.AGENTKIT_DISPATCH_BACKOFF_SECONDS if base is None else base
    ceiling = min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_BACKOFF_SECONDS)


def _outcome_of(row: DispatchAttempt) -> DispatchOutcome:
    return DispatchOutcome(
        dispatch_ref=row.dispatch_ref,
        agent_id=row.agent_id,
        accepted=row.outcome == DispatchOutcomeKind.ACCEPTED,
        error_kind=row.error_kind,
        error=row.error,
        status_code=row.status_code,
        attempts=row.attempt,
        finished_at=row.created_at,
    )


@shared_task(name="agentkit_bridge.tasks.dispatch_to_agentkit", acks_late=True, ignore_result=True)
def dispatch_to_agentkit(dispatch_ref: str, agent_id: str, message: dict[str, Any], attempt: int = 1) -> str:
    """Make attempt ``attempt`` of ``POST /v1/agents/{agent_id}/run``; record it; retry transient failures with
    backoff (a new message carrying ``attempt + 1``); tell the dispatch listeners about the final outcome.

    Idempotent under redelivery (acks_late, worker crash): an attempt already recorded is not sent again. A
    recorded final outcome is announced again, since the crash may have come before the listeners ran.
    """
    done = services.dispatch_attempt_done(dispatch_ref=dispatch_ref, attempt=attempt)
    if done is not None:
        logger.info("Dispatch %s attempt %s already recorded (%s): not sent again", dispatch_ref, attempt, done)
        if done.outcome == DispatchOutcomeKind.RETRYING:
            # The crash came after recording this attempt, maybe before its retry was queued. Queue it: a
            # duplicate retry finds its own attempt recorded and does not send again.
            if not services.dispatch_later_attempt_exists(dispatch_ref=dispatch_ref, attempt=attempt):
                dispatch_to_agentkit.apply_async(
                    (dispatch_ref, agent_id, message, attempt + 1), countdown=backoff_seconds(attempt)
                )
        else:
            notify_dispatch_listeners(_outcome_of(done))
        return done.outcome

    session_id = str(message.get("opscore_session_id") or "")
    started = time.monotonic()
    try:
        accepted = client.run(agent_id, message)
    except AgentKitError as exc:
        latency_ms = int((time.monotonic() - started) * 1000)
        max_attempts = 1 + settings.AGENTKIT_DISPATCH_MAX_RETRIES
        if exc.transient and attempt < max_attempts:
            delay = backoff_seconds(attempt, retry_after=getattr(exc, "retry_after", None))
            services.dispatch_attempt_record(
                dispatch_ref=dispatch_ref,
                agent_id=agent_id,
                attempt=attempt,
                outcome=DispatchOutcomeKind.RETRYING,
                status_code=exc.status_code,
                error_kind=exc.error_kind,
                error=exc.message,
                latency_ms=latency_ms,
                session_id=session_id,
                retry_in=delay,
            )
            dispatch_to_agentkit.apply_async((dispatch_ref, agent_id, message, attempt + 1), countdown=delay)
            return DispatchOutcomeKind.RETRYING
        error = exc.message
        if exc.transient:
            error = f"{error} (gave up after {attempt} attempts)"
        row = services.dispatch_attempt_record(
            dispatch_ref=dispatch_ref,
            agent_id=agent_id,
            attempt=attempt,
            outcome=DispatchOutcomeKind.FAILED,
            status_code=exc.status_code,
            error_kind=exc.error_kind,
            error=error,
            latency_ms=latency_ms,
            session_id=session_id,
            now=timezone.now(),
        )
    else:
        row = services.dispatch_attempt_record(
            dispatch_ref=dispatch_ref,
            agent_id=agent_id,
            attempt=attempt,
            outcome=DispatchOutcomeKind.ACCEPTED,
            status_code=accepted.status_code,
            error_kind="",
            error="",
            latency_ms=int((time.monotonic() - started) * 1000),
            session_id=session_id,
        )
    notify_dispatch_listeners(_outcome_of(row))
    return row.outcome
