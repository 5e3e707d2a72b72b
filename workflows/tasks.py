"""Celery tasks of the engine: thin wrappers that take ids and call services (acks_late, idempotent bodies)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from opscore_project.locks import try_lock
from workflows import services

logger = logging.getLogger(__name__)


@shared_task(name="workflows.tasks.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict[str, int] | None:
    """Time out overdue runs, fail runs that waited too long, dispatch everything dispatchable."""
    with try_lock("workflows.sweep") as acquired:
        if not acquired:
            logger.info("Workflow sweep already running elsewhere; skipped")
            return None
        return services.workflows_sweep()


@shared_task(name="workflows.tasks.check_task_run", acks_late=True, ignore_result=True)
def check_task_run(task_run_id: str) -> None:
    """Scheduled when a run gets a deadline (retry due, timeout, queue timeout): act on it precisely."""
    services.task_run_check(run_id=task_run_id)


@shared_task(name="workflows.tasks.dispatch_pending", acks_late=True, ignore_result=True)
def dispatch_pending() -> int:
    return services.task_runs_dispatch()


@shared_task(name="workflows.tasks.run_scheduled_workflow", acks_late=True, ignore_result=True)
def run_scheduled_workflow(schedule_id: int) -> str | None:
    """Beat entry of a WorkflowSchedule; overlapping runs are skipped unless the schedule allows them."""
    outcome = services.workflow_schedule_run(schedule_id=schedule_id)
    return str(outcome.session.id) if outcome.session else None


@shared_task(name="workflows.tasks.deliver_callback", acks_late=True, ignore_result=True)
def deliver_callback(session_id: str, attempt: int = 1) -> None:
    """POST a finished session's summary to its callbackUrl; retry with exponential backoff."""
    delivery = services.callback_deliver(session_id=session_id, attempt=attempt)
    if delivery is None or delivery.success or attempt >= settings.OPSCORE_CALLBACK_MAX_ATTEMPTS:
        return
    countdown = min(settings.OPSCORE_CALLBACK_BACKOFF_SECONDS * 2 ** (attempt - 1), services.MAX_COUNTDOWN_SECONDS)
    deliver_callback.apply_async(args=[session_id, attempt + 1], countdown=countdown)
