from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from lifecycle.controls import MAX_CAPABILITIES, MAX_CAPABILITY_LENGTH, MAX_QUARANTINE_SECONDS
from lifecycle.models import Agent, AgentState, AgentStateRecord, BreakerState, CapabilitiesSource


class StateReportRequestSerializer(serializers.Serializer):
    """Documents the state report body (the view validates with lifecycle.validation for speed)."""

    agentId = serializers.CharField(help_text="Must equal the agent id in the path.")
    timestamp = serializers.DateTimeField(help_text="ISO-8601 with offset; `Z` accepted.")
    state = serializers.ChoiceField(choices=AgentState.choices)
    details = serializers.DictField(required=False, allow_null=True, help_text="Object; null or omitted = {}.")


class StateReportAcceptedSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    message = serializers.CharField()
    agentId = serializers.CharField()


class CurrentStateSerializer(serializers.Serializer):
    agentId = serializers.CharField(source="agent_id")
    state = serializers.CharField()
    details = serializers.JSONField(source="state_details")
    timestamp = serializers.DateTimeField(source="state_timestamp")


class StateRecordSerializer(serializers.ModelSerializer):
    timestamp = serializers.DateTimeField(source="reported_at")
    receivedAt = serializers.DateTimeField(source="received_at")

    class Meta:
        model = AgentStateRecord
        fields = ["state", "details", "timestamp", "receivedAt"]


class AgentSerializer(serializers.ModelSerializer):
    agentId = serializers.CharField(source="agent_id")
    capabilitiesKnown = serializers.BooleanField(source="capabilities_known")
    contactEndpoint = serializers.CharField(source="contact_endpoint")
    registered = serializers.BooleanField(source="is_registered")
    registeredAt = serializers.DateTimeField(source="registered_at")
    deregisteredAt = serializers.DateTimeField(source="deregistered_at")
    stateTimestamp = serializers.DateTimeField(source="state_timestamp")
    stateDetails = serializers.JSONField(source="state_details")
    lastSeenAt = serializers.DateTimeField(source="last_seen_at")
    stale = serializers.SerializerMethodField()
    busy = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    deliveryFailures = serializers.IntegerField(
        source="delivery_failures", help_text="Tasks AgentKit accepted for this agent that it never started."
    )
    lastDeliveryFailureAt = serializers.DateTimeField(source="last_delivery_failure_at", allow_null=True)
    capabilitiesSource = serializers.ChoiceField(
        source="capabilities_source",
        choices=[("", "unknown"), *CapabilitiesSource.choices],
        help_text="Where the known capabilities came from; empty while unknown.",
    )
    drained = serializers.BooleanField(source="is_drained", help_text="No new tasks; the current one finishes.")
    drainedAt = serializers.DateTimeField(source="drained_at", allow_null=True)
    quarantined = serializers.BooleanField(source="is_quarantined", help_text="Circuit breaker open or half-open.")
    breakerState = serializers.ChoiceField(source="breaker_state", choices=BreakerState.choices)
    quarantinedUntil = serializers.DateTimeField(
        source="quarantined_until",
        allow_null=True,
        help_text="End of the cool-down; null while quarantined = until released.",
    )
    quarantineReason = serializers.CharField(source="quarantine_reason")
    consecutiveFailures = serializers.IntegerField(
        source="consecutive_failures", help_text="Task outcomes in a row that were failures."
    )

    class Meta:
        model = Agent
        fields = [
            "agentId",
            "name",
            "version",
            "capabilities",
            "capabilitiesKnown",
            "contactEndpoint",
            "metadata",
            "source",
            "registered",
            "registeredAt",
            "deregisteredAt",
            "state",
            "stateTimestamp",
            "stateDetails",
            "lastSeenAt",
            "stale",
            "busy",
            "deliveryFailures",
            "lastDeliveryFailureAt",
            "capabilitiesSource",
            "drained",
            "drainedAt",
            "quarantined",
            "breakerState",
            "quarantinedUntil",
            "quarantineReason",
            "consecutiveFailures",
            "createdAt",
        ]

    def get_stale(self, agent: Agent) -> bool:
        return agent.is_stale(self.context.get("now") or timezone.now())

    def get_busy(self, agent: Agent) -> bool:
        return bool(agent.assigned_task)


class AgentDetailSerializer(AgentSerializer):
    recentHistory = serializers.SerializerMethodField()

    class Meta(AgentSerializer.Meta):
        fields = [*AgentSerializer.Meta.fields, "recentHistory"]

    def get_recentHistory(self, agent: Agent) -> list[dict]:
        records = agent.history.order_by("-reported_at", "-id")[: self.context.get("history_limit", 20)]
        return StateRecordSerializer(records, many=True).data


class QuarantineRequestSerializer(serializers.Serializer):
    seconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_QUARANTINE_SECONDS,
        help_text="Cool-down; after it the agent gets one trial task. Omitted or null: until released.",
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class CapabilitiesRequestSerializer(serializers.Serializer):
    capabilities = serializers.ListField(
        child=serializers.CharField(max_length=MAX_CAPABILITY_LENGTH, allow_blank=False),
        max_length=MAX_CAPABILITIES,
        help_text="Capability names; they count as known, with source `operator`.",
    )

    def validate_capabilities(self, value: list[str]) -> list[str]:
        raw = self.initial_data.get("capabilities")
        if not all(isinstance(item, str) for item in raw or []):
            raise serializers.ValidationError("Each capability is a string.")  # not a number turned into one
        return value
