"""Reads of the alerts app for the API, the dashboard and the SDK (JSON-ready dicts)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from opscore_project.alerts.models import Alert, AlertDelivery, AlertRule


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def rule_list() -> QuerySet[AlertRule]:
    return AlertRule.objects.order_by("name")


def rule_as_dict(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "name": rule.name,
        "condition": rule.condition,
        "threshold": rule.threshold,
        "workflowId": rule.workflow_id or None,
        "channel": rule.channel,
        "target": rule.target,
        "quietPeriodSeconds": rule.quiet_period_seconds,
        "enabled": rule.enabled,
        "createdAt": _iso(rule.created_at),
        "updatedAt": _iso(rule.updated_at),
    }


def alert_list(*, status: str | None = None, rule_id: int | None = None) -> QuerySet[Alert]:
    """Alerts newest first, with their rule and deliveries loaded."""
    alerts = Alert.objects.select_related("rule").prefetch_related(
        Prefetch("deliveries", queryset=AlertDelivery.objects.order_by("created_at", "id"))
    )
    if status:
        alerts = alerts.filter(status=status)
    if rule_id is not None:
        alerts = alerts.filter(rule_id=rule_id)
    return alerts.order_by("-fired_at", "-id")


def delivery_as_dict(delivery: AlertDelivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "kind": delivery.kind,
        "channel": delivery.channel,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "statusCode": delivery.status_code,
        "reason": delivery.reason or None,
        "nextAttemptAt": _iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "createdAt": _iso(delivery.created_at),
        "sentAt": _iso(delivery.sent_at),
    }


def alert_as_dict(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "ruleId": alert.rule_id,
        "ruleName": alert.rule.name,
        "condition": alert.rule.condition,
        "key": alert.dedupe_key,
        "status": alert.status,
        "summary": alert.summary,
        "details": alert.details,
        "occurrences": alert.occurrences,
        "firedAt": _iso(alert.fired_at),
        "lastOccurredAt": _iso(alert.last_occurred_at),
        "resolvedAt": _iso(alert.resolved_at),
        "deliveries": [delivery_as_dict(d) for d in alert.deliveries.all()],
    }
