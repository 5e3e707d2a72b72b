"""Request validation and response shapes of the alerts API (docs/api.md#alerts)."""

from __future__ import annotations

from rest_framework import serializers

from opscore_project.alerts.models import AlertStatus, Channel, Condition, DeliveryStatus

MAX_THRESHOLD = 1_000_000_000  # seconds or counts; bounds the time arithmetic
MAX_QUIET_SECONDS = 31 * 24 * 3600

# API name -> service (model) name.
RULE_FIELD_NAMES = {
    "name": "name",
    "condition": "condition",
    "threshold": "threshold",
    "workflowId": "workflow_id",
    "channel": "channel",
    "target": "target",
    "quietPeriodSeconds": "quiet_period_seconds",
    "enabled": "enabled",
}


class AlertRuleRequestSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    condition = serializers.ChoiceField(choices=Condition.choices)
    threshold = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=MAX_THRESHOLD,
        help_text="Seconds (agent_stale, task_queue_wait, input_inbox_age, delivery_failures window) or a count "
        "(sync_failures).",
    )
    workflowId = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="session_failed, task_queue_wait, input_inbox_age."
    )
    channel = serializers.ChoiceField(choices=Channel.choices)
    target = serializers.CharField(max_length=2048, help_text="https URL (webhook, slack) or email addresses.")
    quietPeriodSeconds = serializers.IntegerField(required=False, min_value=0, max_value=MAX_QUIET_SECONDS)
    enabled = serializers.BooleanField(required=False)

    def service_values(self) -> dict:
        return {RULE_FIELD_NAMES[name]: value for name, value in self.validated_data.items()}


class AlertRuleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    condition = serializers.ChoiceField(choices=Condition.choices)
    threshold = serializers.FloatField(allow_null=True)
    workflowId = serializers.CharField(allow_null=True)
    channel = serializers.ChoiceField(choices=Channel.choices)
    target = serializers.CharField()
    quietPeriodSeconds = serializers.IntegerField()
    enabled = serializers.BooleanField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class AlertDeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=AlertStatus.choices, help_text="firing or resolved notification.")
    channel = serializers.ChoiceField(choices=Channel.choices)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    statusCode = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_null=True, help_text="Why the last attempt failed (short).")
    nextAttemptAt = serializers.DateTimeField(allow_null=True)
    createdAt = serializers.DateTimeField()
    sentAt = serializers.DateTimeField(allow_null=True)


class AlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ruleId = serializers.IntegerField()
    ruleName = serializers.CharField()
    condition = serializers.ChoiceField(choices=Condition.choices)
    key = serializers.CharField(help_text="The subject: an agent id, a workflow id, `agentkit`.")
    status = serializers.ChoiceField(choices=AlertStatus.choices)
    summary = serializers.CharField()
    details = serializers.DictField()
    occurrences = serializers.IntegerField()
    firedAt = serializers.DateTimeField()
    lastOccurredAt = serializers.DateTimeField()
    resolvedAt = serializers.DateTimeField(allow_null=True)
    deliveries = AlertDeliverySerializer(many=True)
