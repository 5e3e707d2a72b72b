from __future__ import annotations

from rest_framework import serializers

from opscore_project.observability.models import OperationEvent


class EventSerializer(serializers.ModelSerializer):
    createdAt = serializers.DateTimeField(source="created_at")
    eventType = serializers.CharField(source="event_type")
    agentId = serializers.CharField(source="agent_id")
    sessionId = serializers.CharField(source="session_id")
    taskId = serializers.CharField(source="task_id")
    requestId = serializers.CharField(source="request_id")

    class Meta:
        model = OperationEvent
        fields = [
            "id",
            "createdAt",
            "level",
            "eventType",
            "agentId",
            "sessionId",
            "taskId",
            "message",
            "context",
            "requestId",
        ]
        read_only_fields = fields
