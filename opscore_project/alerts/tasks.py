"""Celery tasks of the alerts: the periodic evaluation and the delivery of each notification. Thin."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from opscore_project.alerts.delivery import alert_delivery_attempt
from opscore_project.alerts.evaluation import alerts_evaluate_locked


@shared_task(
    name="opscore_project.alerts.tasks.evaluate_alerts",
    acks_late=True,
    ignore_result=True,
    expires=settings.OPSCORE_ALERT_EVALUATE_SECONDS,
)
def evaluate_alerts() -> dict[str, int] | None:
    """Evaluate every enabled alert rule (every OPSCORE_ALERT_EVALUATE_SECONDS; overlapping runs skip)."""
    report = alerts_evaluate_locked()
    if report.skipped_locked or not (report.fired or report.resolved or report.deliveries):
        return None
    return {"fired": report.fired, "resolved": report.resolved, "deliveries": len(report.deliveries)}


@shared_task(name="opscore_project.alerts.tasks.deliver_alert", acks_late=True, ignore_result=True)
def deliver_alert(delivery_id: int) -> None:
    """Send one alert notification; schedule the next attempt after a backoff when it failed."""
    outcome = alert_delivery_attempt(delivery_id=delivery_id)
    if outcome.retry_in is not None:
        deliver_alert.apply_async(args=[delivery_id], countdown=max(outcome.retry_in, 0.05))
