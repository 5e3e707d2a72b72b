"""The evaluation pass: fire alerts whose condition holds, resolve those whose condition ended, and create the
deliveries of their notifications (sent by Celery after the commit, see ``delivery``).

It runs in a Celery beat task (``tasks.evaluate_alerts``) under a cluster-wide lock, reading live state and the
operation log — never in the engine's path, and holding no lock the engine needs. Lock order: an alert row, then
its deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from opscore_project.alerts import conditions, dispatching
from opscore_project.alerts.models import (
    Alert,
    AlertCursor,
    AlertDelivery,
    AlertRule,
    AlertStatus,
    DeliveryStatus,
)
from opscore_project.locks import try_lock
from opscore_project.observability.models import OperationEvent
from opscore_project.observability.oplog import log_operation

ALERT_FIRED = "alert.fired"
ALERT_RESOLVED = "alert.resolved"

EVALUATE_LOCK = "opscore:alerts:evaluate"
CURSOR_NAME = "operation-log"
EVENT_BATCH = 5000
MAX_BATCHES_PER_PASS = 40  # a pass reads at most this many batches; the next pass goes on from there
# Event ids are taken when a row is inserted but become visible when its transaction commits, so a lower id can
# appear after a higher one. The cursor stops before a gap in the ids for this long (a transaction still
# committing); an older gap is an id that will never appear (a rollback) and is passed over.
GAP_GRACE_SECONDS = 30
# A pending delivery this much past its attempt time lost its Celery message: the evaluator re-sends it.
LOST_DELIVERY_SECONDS = 60


@dataclass
class EvaluationReport:
    fired: int = 0
    resolved: int = 0
    deliveries: list[int] = field(default_factory=list)
    events_read: int = 0
    skipped_locked: bool = False


def alert_message(alert: Alert, kind: str) -> dict[str, Any]:
    """The notification body of ``alert`` (webhook JSON; the other channels are rendered from it)."""
    rule = alert.rule
    return {
        "event": f"alert.{kind}",
        "alert": {
            "id": alert.pk,
            "ruleId": rule.pk,
            "ruleName": rule.name,
            "condition": rule.condition,
            "key": alert.dedupe_key,
            "status": alert.status,
            "summary": alert.summary,
            "details": alert.details,
            "occurrences": alert.occurrences,
            "firedAt": alert.fired_at.isoformat(),
            "resolvedAt": alert.resolved_at.isoformat() if alert.resolved_at else None,
        },
    }


def _notify(alert: Alert, kind: str, now: datetime, report: EvaluationReport) -> None:
    rule = alert.rule
    delivery = AlertDelivery.objects.create(
        alert=alert, kind=kind, channel=rule.channel, target=rule.target, next_attempt_at=now, created_at=now
    )
    Alert.objects.filter(pk=alert.pk).update(notified_status=kind, last_notified_at=now)
    alert.notified_status, alert.last_notified_at = kind, now
    report.deliveries.append(delivery.pk)


def _quiet(alert: Alert, now: datetime) -> bool:
    last = alert.last_notified_at
    return last is not None and now - last < timedelta(seconds=alert.rule.quiet_period_seconds)


def _fire(rule: AlertRule, finding: conditions.Finding, now: datetime, report: EvaluationReport, *, repeat: bool):
    """Open (or keep) the alert of ``finding.key``. ``repeat``: the condition happened again (an event), which is
    notified again once the quiet period has passed."""
    alert = Alert.objects.select_related("rule").filter(rule=rule, dedupe_key=finding.key).order_by("-id").first()
    if alert is not None and alert.status == AlertStatus.FIRING:
        if repeat:
            Alert.objects.filter(pk=alert.pk).update(
                occurrences=F("occurrences") + 1, last_occurred_at=now, summary=finding.summary[:500]
            )
            alert.occurrences += 1
            alert.summary = finding.summary[:500]
            if not _quiet(alert, now):
                _notify(alert, AlertStatus.FIRING, now, report)
        return
    if alert is not None and _quiet(alert, now):
        # Resolved a moment ago: the same alert again, reopened without a notification (one is sent once the
        # quiet period has passed, if it is still firing then).
        reopened = Alert.objects.filter(pk=alert.pk, status=AlertStatus.RESOLVED).update(
            status=AlertStatus.FIRING,
            resolved_at=None,
            occurrences=F("occurrences") + 1,
            last_occurred_at=now,
            summary=finding.summary[:500],
            details=finding.details,
        )
        if reopened:
            report.fired += 1
            _log_fired(rule, finding, reopened=True)
        return
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule=rule,
                dedupe_key=finding.key,
                summary=finding.summary[:500],
                details=finding.details,
                fired_at=now,
                last_occurred_at=now,
            )
    except IntegrityError:
        return  # another evaluator opened it first
    report.fired += 1
    _log_fired(rule, finding, reopened=False)
    _notify(alert, AlertStatus.FIRING, now, report)


def _log_fired(rule: AlertRule, finding: conditions.Finding, *, reopened: bool) -> None:
    context = {"ruleId": rule.pk, "rule": rule.name, "key": finding.key, "condition": rule.condition}
    if reopened:
        context["reopened"] = True  # within the quiet period: not notified now
    log_operation(
        ALERT_FIRED,
        context,
        level="warning",
        message=f"Alert {rule.name}: {finding.summary}",
        agent_id=finding.details.get("agentId", ""),
    )


def _resolve(alert: Alert, now: datetime, report: EvaluationReport, summary: str = "") -> None:
    changes: dict[str, Any] = {"status": AlertStatus.RESOLVED, "resolved_at": now}
    if summary:
        changes["summary"] = summary[:500]
    if not Alert.objects.filter(pk=alert.pk, status=AlertStatus.FIRING).update(**changes):
        return
    alert.status, alert.resolved_at = AlertStatus.RESOLVED, now
    alert.summary = changes.get("summary", alert.summary)
    report.resolved += 1
    log_operation(
        ALERT_RESOLVED,
        {"ruleId": alert.rule.pk, "rule": alert.rule.name, "key": alert.dedupe_key},
        message=f"Alert {alert.rule.name} resolved: {alert.dedupe_key}",
        agent_id=(alert.details or {}).get("agentId", ""),
    )
    if alert.notified_status == AlertStatus.FIRING:
        _notify(alert, AlertStatus.RESOLVED, now, report)


def _evaluate_state_rule(rule: AlertRule, now: datetime, report: EvaluationReport) -> None:
    found = {finding.key: finding for finding in conditions.findings(rule, now)}
    firing = {alert.dedupe_key: alert for alert in rule.alerts.filter(status=AlertStatus.FIRING)}
    for key, finding in found.items():
        if key in firing:
            if firing[key].details != finding.details:  # e.g. more tasks waiting: keep the alert current
                Alert.objects.filter(pk=firing[key].pk).update(summary=finding.summary[:500], details=finding.details)
        else:
            _fire(rule, finding, now, report, repeat=False)
    for key, alert in firing.items():
        if key not in found:
            alert.rule = rule
            _resolve(alert, now, report)


def _latest_event_id() -> int:
    return OperationEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _cursor() -> AlertCursor:
    cursor = AlertCursor.objects.filter(name=CURSOR_NAME).first()
    if cursor is None:
        # The first pass starts at the end of the log: alerts are about what happens from now on.
        cursor, _ = AlertCursor.objects.get_or_create(name=CURSOR_NAME, defaults={"last_event_id": _latest_event_id()})
    return cursor


def _read_events(after: int, now: datetime) -> tuple[list[OperationEvent], int, bool]:
    """The watched events of the next batch after event ``after``, in id order; the id read up to; and whether
    the log was read to its (safe) end."""
    rows = list(
        OperationEvent.objects.filter(pk__gt=after)
        .order_by("pk")
        .values_list("pk", "created_at", "event_type")[:EVENT_BATCH]
    )
    last = after
    grace = now - timedelta(seconds=GAP_GRACE_SECONDS)
    wanted: list[int] = []
    for pk, created_at, event_type in rows:
        if last and pk != last + 1 and created_at > grace:
            return _load(wanted), last, True  # a fresh gap: a transaction with a lower id may still commit
        last = pk
        if event_type in conditions.WATCHED_EVENTS:
            wanted.append(pk)
    return _load(wanted), last, len(rows) < EVENT_BATCH


def _load(event_ids: list[int]) -> list[OperationEvent]:
    return list(OperationEvent.objects.filter(pk__in=event_ids).order_by("pk")) if event_ids else []


def _evaluate_events(rules: list[AlertRule], now: datetime, report: EvaluationReport) -> None:
    """Act on the operation log's new events, batch by batch, each batch with its cursor move in one
    transaction. Without event rules the cursor just follows the log, so a rule added later starts from then."""
    if not rules:
        with transaction.atomic():
            _cursor()
            AlertCursor.objects.filter(name=CURSOR_NAME).update(last_event_id=_latest_event_id(), updated_at=now)
        return
    for _ in range(MAX_BATCHES_PER_PASS):
        with transaction.atomic():
            cursor = _cursor()
            found, last, at_end = _read_events(cursor.last_event_id, now)
            report.events_read += len(found)
            for event in found:
                _apply_event(rules, event, now, report)
            if last != cursor.last_event_id:
                AlertCursor.objects.filter(name=CURSOR_NAME).update(last_event_id=last, updated_at=now)
        if at_end:
            return


def _apply_event(rules: list[AlertRule], event: OperationEvent, now: datetime, report: EvaluationReport) -> None:
    for rule in rules:
        effect = conditions.event_effect(rule, event)
        if effect is None:
            continue
        if effect.fire:
            _fire(rule, effect.finding, now, report, repeat=True)
            continue
        alert = rule.alerts.filter(dedupe_key=effect.finding.key, status=AlertStatus.FIRING).first()
        if alert is not None:
            alert.rule = rule
            _resolve(alert, now, report, summary=effect.finding.summary)


def _catch_up_held_back(now: datetime, report: EvaluationReport) -> None:
    """A firing alert reopened within its quiet period was not notified: notify it once the period is over."""
    held = Alert.objects.select_related("rule").filter(status=AlertStatus.FIRING).exclude(notified_status="firing")
    for alert in held:
        if alert.rule.enabled and not _quiet(alert, now):
            _notify(alert, AlertStatus.FIRING, now, report)


def alerts_evaluate(*, now: datetime | None = None) -> EvaluationReport:
    """One evaluation pass over every enabled rule: fire alerts whose condition holds, resolve those whose
    condition ended, and create their deliveries (sent by Celery after commit). Safe to run concurrently (one
    firing alert per rule and key), but meant to run under ``alerts_evaluate_locked``."""
    now = now or timezone.now()
    report = EvaluationReport()
    rules = list(AlertRule.objects.filter(enabled=True).order_by("pk"))
    _evaluate_events([r for r in rules if r.condition in conditions.EVENT_CONDITIONS], now, report)
    for rule in rules:
        if rule.condition in conditions.STATE_CONDITIONS:
            with transaction.atomic():
                _evaluate_state_rule(rule, now, report)
    with transaction.atomic():
        _catch_up_held_back(now, report)
    lost = list(
        AlertDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lt=now - timedelta(seconds=LOST_DELIVERY_SECONDS)
        ).values_list("pk", flat=True)[:500]
    )
    # Due now: while no worker takes them (all down), they are queued again once a minute, not at every pass.
    AlertDelivery.objects.filter(pk__in=lost, status=DeliveryStatus.PENDING).update(next_attempt_at=now)
    dispatching.enqueue_deliveries(report.deliveries + lost)
    return report


def alerts_evaluate_locked(*, now: datetime | None = None) -> EvaluationReport:
    """``alerts_evaluate`` unless another evaluation is running (then nothing, ``skipped_locked``)."""
    with try_lock(EVALUATE_LOCK) as acquired:
        if not acquired:
            return EvaluationReport(skipped_locked=True)
        return alerts_evaluate(now=now)
