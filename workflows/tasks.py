"""Celery tasks of the engine: thin wrappers that take ids and call services (acks_late, idempotent bodies)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from workflows.engine.callbacks import MAX_COUNTDOWN_SECONDS, callback_deliver
from workflows.engine.human import human_notice_deliver
from workflows.engine.loop import engine_drain
from workflows.engine.schedules import workflow_schedule_run


@shared_task(name="workflows.tasks.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict[str, int] | None:
    """Safety net every few seconds: run engine steps (deadlines, dispatch) and re-queue unsent dispatches, in
    case no engine loop is running. Steps are exclusive cluster-wide, so this never races a loop. Returns None
    when it found nothing to do (the worker then logs no line for it)."""
    results = engine_drain()
    if not any(result.did_work for result in results):
        return None
    return {
        "steps": len(results),
        "reports": sum(r.reports for r in results),
        "deadlines": sum(r.deadlines for r in results),
        "dispatched": sum(len(r.dispatched) for r in results),
    }


@shared_task(name="workflows.tasks.run_scheduled_workflow", acks_late=True, ignore_result=True)
def run_scheduled_workflow(schedule_id: int) -> str | None:
    """Beat entry of a WorkflowSchedule; overlapping runs are skipped unless the schedule allows them."""
    outcome = workflow_schedule_run(schedule_id=schedule_id)
    return str(outcome.session.id) if outcome.session else None


@shared_task(name="workflows.tasks.deliver_callback", acks_late=True, ignore_result=True)
def deliver_callback(session_id: str, attempt: int = 1) -> None:
    """POST a finished session's summary to its callbackUrl; retry with exponential backoff."""
    delivery = callback_deliver(session_id=session_id, attempt=attempt)
    if delivery is None or delivery.success or attempt >= settings.OPSCORE_CALLBACK_MAX_ATTEMPTS:
        return
    countdown = min(settings.OPSCORE_CALLBACK_BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_COUNTDOWN_SECONDS)
    deliver_callback.apply_async(args=[session_id, attempt + 1], countdown=countdown)


@shared_task(name="workflows.tasks.deliver_human_notice", acks_late=True, ignore_result=True)
def deliver_human_notice(run_id: str, event: str, attempt: int = 1, urls: list[str] | None = None) -> None:
    """POST a human task's event (waiting, answered, timed out, reminder) to its webhooks; the URLs that failed
    are retried with exponential backoff, like completion callbacks."""
    final = attempt >= settings.OPSCORE_CALLBACK_MAX_ATTEMPTS
    failed = human_notice_deliver(run_id=run_id, event=event, urls=urls, final=final)
    if failed and not final:
        countdown = min(settings.OPSCORE_CALLBACK_BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_COUNTDOWN_SECONDS)
        deliver_human_notice.apply_async(args=[run_id, event, attempt + 1, failed], countdown=countdown)
