"""Alert rules: create, change, delete, each validated whole (the same checks for the API and the admin).

The evaluation pass that fires and resolves alerts is in ``evaluation``; sending is in ``delivery``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from opscore_project.alerts.models import AlertRule, Channel, Condition
from opscore_project.errors import Conflict, NotFound, ValidationFailed
from workflows.callback_safety import UnsafeCallbackUrl, check_callback_url

THRESHOLD_RULES: dict[str, tuple[str, bool]] = {
    # condition: (what the threshold means, required)
    Condition.AGENT_STALE: ("seconds without a report (default OPSCORE_AGENT_STALE_SECONDS)", False),
    Condition.TASK_QUEUE_WAIT: ("seconds a task waited in the queue", True),
    Condition.INPUT_INBOX_AGE: ("seconds a task waited for human input", True),
    Condition.DELIVERY_FAILURES: ("window in seconds (default 600)", False),
    Condition.SYNC_FAILURES: ("failed syncs in a row (default 3)", False),
}
WORKFLOW_CONDITIONS = (Condition.SESSION_FAILED, Condition.TASK_QUEUE_WAIT, Condition.INPUT_INBOX_AGE)
RULE_FIELDS = ("name", "condition", "threshold", "workflow_id", "channel", "target", "quiet_period_seconds", "enabled")
# API names of the fields, for error bodies.
API_NAMES = {
    "name": "name",
    "condition": "condition",
    "threshold": "threshold",
    "workflow_id": "workflowId",
    "channel": "channel",
    "target": "target",
    "quiet_period_seconds": "quietPeriodSeconds",
    "enabled": "enabled",
}


# --- rules ---------------------------------------------------------------------------------------------------


def alert_rule_check(values: dict[str, Any]) -> None:
    """Validate a complete rule (model field names); raise ValidationFailed naming the API fields at fault."""
    errors: dict[str, list[str]] = {}
    condition, threshold, channel = values.get("condition"), values.get("threshold"), values.get("channel")
    if condition not in Condition.values:
        errors["condition"] = [f"Unknown condition; accepted: {', '.join(Condition.values)}."]
    elif condition in THRESHOLD_RULES:
        meaning, required = THRESHOLD_RULES[condition]
        if threshold is None and required:
            errors["threshold"] = [f"Required for {condition}: {meaning}."]
        elif threshold is not None and not threshold > 0:
            errors["threshold"] = [f"Must be above 0 ({meaning})."]
        elif condition == Condition.SYNC_FAILURES and threshold is not None and threshold != int(threshold):
            errors["threshold"] = ["A whole number of syncs."]
    elif threshold is not None:
        errors["threshold"] = [f"{condition} takes no threshold."]
    if values.get("workflow_id") and condition in Condition.values and condition not in WORKFLOW_CONDITIONS:
        errors["workflowId"] = [f"Only {', '.join(WORKFLOW_CONDITIONS)} filter by workflow."]
    target = (values.get("target") or "").strip()
    if channel not in Channel.values:
        errors["channel"] = [f"Unknown channel; accepted: {', '.join(Channel.values)}."]
    elif not target:
        errors["target"] = ["Required: a URL for webhook and slack, email addresses for email."]
    elif channel == Channel.EMAIL:
        for address in (part.strip() for part in target.split(",")):
            try:
                validate_email(address)
            except DjangoValidationError:
                errors["target"] = [f"Not an email address: {address[:100]!r}."]
                break
    else:
        try:
            check_callback_url(target)
        except UnsafeCallbackUrl as exc:
            errors["target"] = [f"URL refused: {exc}."]
    if not (values.get("name") or "").strip():
        errors["name"] = ["Required."]
    if errors:
        raise ValidationFailed(errors)


def _save_rule(rule: AlertRule) -> AlertRule:
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError as exc:
        raise Conflict(f"An alert rule named {rule.name!r} exists.", errors={"name": ["Already used."]}) from exc
    return rule


def alert_rule_create(
    *,
    name: str,
    condition: str,
    channel: str,
    target: str,
    threshold: float | None = None,
    workflow_id: str = "",
    quiet_period_seconds: int = 300,
    enabled: bool = True,
) -> AlertRule:
    """Create a rule. Raises ValidationFailed (400) for a bad combination, Conflict (409) for a used name."""
    values = {
        "name": name.strip(),
        "condition": condition,
        "threshold": threshold,
        "workflow_id": workflow_id.strip(),
        "channel": channel,
        "target": target.strip(),
        "quiet_period_seconds": quiet_period_seconds,
        "enabled": enabled,
    }
    alert_rule_check(values)
    return _save_rule(AlertRule(**values))


def alert_rule_get(*, rule_id: int | str) -> AlertRule:
    """The rule, or NotFound."""
    try:
        pk = int(rule_id)
        if not 0 < pk < 2**63:  # the id column's range: a larger number would be a database error
            raise ValueError(pk)
        return AlertRule.objects.get(pk=pk)
    except (AlertRule.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"Alert rule {rule_id} does not exist.") from None


def alert_rule_update(*, rule_id: int | str, **changes: Any) -> AlertRule:
    """Change some fields of a rule (model field names); the result is validated whole. Raises NotFound,
    ValidationFailed, Conflict."""
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ValidationFailed({name: ["Unknown field."] for name in sorted(unknown)})
    rule = alert_rule_get(rule_id=rule_id)
    values = {name: getattr(rule, name) for name in RULE_FIELDS} | changes
    for text in ("name", "workflow_id", "target"):
        values[text] = (values[text] or "").strip()
    alert_rule_check(values)
    for name, value in values.items():
        setattr(rule, name, value)
    rule.updated_at = timezone.now()
    return _save_rule(rule)


def alert_rule_delete(*, rule_id: int | str) -> None:
    """Delete a rule with its alerts and deliveries. Raises NotFound."""
    alert_rule_get(rule_id=rule_id).delete()
