"""Sending a delivery: one attempt at a time, claimed by compare-and-swap, retried with backoff and jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from opscore_project.alerts import channels
from opscore_project.alerts.evaluation import alert_message
from opscore_project.alerts.models import AlertDelivery, DeliveryStatus
from opscore_project.observability.oplog import log_operation

ALERT_DELIVERY_FAILED = "alert.delivery_failed"
# Redis redelivers an unacknowledged message after its visibility timeout: never schedule a retry further out.
MAX_BACKOFF_SECONDS = 3000.0


def backoff_seconds(attempt: int, *, base: float | None = None, rng: random.Random | None = None) -> float:
    """Delay before the attempt after ``attempt``: exponential (base × 2^(attempt−1), capped), with "equal
    jitter" — half fixed, half random — so failed deliveries do not retry in lock-step."""
    base = settings.OPSCORE_ALERT_BACKOFF_SECONDS if base is None else base
    ceiling = min(base * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def _lease_seconds() -> float:
    # Long enough for one send (connect + read, or SMTP) to finish; a worker that died frees it after this.
    return 2 * settings.OPSCORE_CALLBACK_TIMEOUT_SECONDS + 30


@dataclass(frozen=True)
class AttemptOutcome:
    delivery: AlertDelivery | None
    retry_in: float | None = None  # seconds until the next attempt is due (None: nothing more to do now)


def alert_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> AttemptOutcome:
    """Make the next attempt of a pending delivery if it is due, and record it: sent, failed for good (after
    OPSCORE_ALERT_MAX_ATTEMPTS, or at once for a URL the safety rules refuse), or due again after a backoff.
    An attempt is claimed by compare-and-swap, so two workers never send the same attempt."""
    now = now or timezone.now()
    row = AlertDelivery.objects.filter(pk=delivery_id).values("status", "next_attempt_at", "attempts").first()
    if row is None or row["status"] != DeliveryStatus.PENDING:
        return AttemptOutcome(None)
    if row["next_attempt_at"] > now:
        return AttemptOutcome(None, retry_in=(row["next_attempt_at"] - now).total_seconds())
    claimed = AlertDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, attempts=row["attempts"], next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + timedelta(seconds=_lease_seconds()))
    if not claimed:
        return AttemptOutcome(None)
    delivery = AlertDelivery.objects.select_related("alert__rule").filter(pk=delivery_id).first()
    if delivery is None:
        return AttemptOutcome(None)  # its rule was deleted meanwhile
    result = channels.send(delivery.channel, delivery.target, alert_message(delivery.alert, delivery.kind))
    done = timezone.now()
    delivery.status_code, delivery.reason = result.status_code, result.error[:300]
    retry_in = None
    if not result.error:
        delivery.status, delivery.sent_at = DeliveryStatus.SENT, done
    elif result.permanent or delivery.attempts >= settings.OPSCORE_ALERT_MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.FAILED
        log_operation(
            ALERT_DELIVERY_FAILED,
            {"alertId": delivery.alert_id, "rule": delivery.alert.rule.name, "channel": delivery.channel},
            level="error",
            message=f"Alert delivery failed for good after {delivery.attempts} attempt(s): {result.error}",
        )
    else:
        retry_in = backoff_seconds(delivery.attempts)
        delivery.next_attempt_at = done + timedelta(seconds=retry_in)
    # Guarded by our claim: the row is still pending with the attempt count we set.
    AlertDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, attempts=delivery.attempts).update(
        status=delivery.status,
        status_code=delivery.status_code,
        reason=delivery.reason,
        sent_at=delivery.sent_at,
        next_attempt_at=delivery.next_attempt_at,
    )
    return AttemptOutcome(delivery, retry_in=retry_in)
