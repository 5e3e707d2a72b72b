"""Request validation for the triggers, and response shapes for the OpenAPI schema (docs/api.md)."""

from __future__ import annotations

from rest_framework import serializers

from workflows.callback_safety import UnsafeCallbackUrl, check_callback_url
from workflows.models import SessionStatus, TaskKind, TaskRunStatus


def safe_callback_url(value: str) -> None:
    """Refuse at trigger time what delivery would refuse (workflows/callback_safety.py); checked again then."""
    if value:
        try:
            check_callback_url(value)
        except UnsafeCallbackUrl as exc:
            raise serializers.ValidationError(f"Callback URL refused: {exc}.") from exc


CALLBACK_HELP = "https URL POSTed when the session ends; must resolve to a public address (docs/security.md)."


class TaskSerializer(serializers.Serializer):
    taskId = serializers.CharField()
    name = serializers.CharField(required=False)
    kind = serializers.ChoiceField(choices=TaskKind.choices, required=False, help_text='Default "agent".')
    agentCapability = serializers.CharField(
        required=False, allow_null=True, help_text="Agent tasks; optional when the workflow runs for one agent."
    )
    parameters = serializers.DictField(required=False, help_text="May hold {{ payload.x }} / {{ tasks.id.result.y }}.")
    nextTaskId = serializers.CharField(required=False, allow_null=True)
    dependsOn = serializers.ListField(child=serializers.CharField(), required=False)
    maxRetries = serializers.IntegerField(required=False)
    retryBackoffSeconds = serializers.FloatField(required=False)
    timeoutSeconds = serializers.FloatField(required=False)
    queueTimeoutSeconds = serializers.FloatField(required=False)
    priority = serializers.IntegerField(required=False)
    fallbackTaskId = serializers.CharField(required=False, allow_null=True)
    prompt = serializers.CharField(required=False, help_text="Approval and input tasks; may hold references.")
    options = serializers.ListField(child=serializers.CharField(), required=False, help_text="Approval tasks.")
    inputSchema = serializers.JSONField(required=False, help_text="Input tasks: a JSON Schema subset.")
    assignees = serializers.ListField(child=serializers.CharField(), required=False)
    onTimeout = serializers.JSONField(required=False, help_text="fail, approve, reject or a default value.")
    onReject = serializers.CharField(required=False, help_text="Approval tasks: task id run on rejection.")
    remindAfterSeconds = serializers.FloatField(required=False)


class PolicySerializer(serializers.Serializer):
    maxRetries = serializers.IntegerField(required=False)
    retryBackoffSeconds = serializers.FloatField(required=False)
    timeoutSeconds = serializers.FloatField(required=False)
    queueTimeoutSeconds = serializers.FloatField(required=False)
    priority = serializers.IntegerField(required=False)


class DefinitionSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(required=False)
    description = serializers.CharField(required=False)
    version = serializers.CharField(required=False, help_text='Default "1.0".')
    defaults = PolicySerializer(required=False)
    tasks = TaskSerializer(many=True)
    notifyUrl = serializers.URLField(required=False, help_text="Human tasks' events are POSTed here, signed.")


class DefinitionResponseSerializer(DefinitionSerializer):
    createdAt = serializers.DateTimeField()
    source = serializers.CharField()


def callback_url_field() -> serializers.URLField:
    """The optional ``callbackUrl`` of both triggers: a URL that passes the callback safety rules."""
    return serializers.URLField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2048,
        validators=[safe_callback_url],
        help_text=CALLBACK_HELP,
    )


class AgentTriggerRequestSerializer(serializers.Serializer):
    workflowDefinitionId = serializers.CharField(required=False)
    workflowDefinition = serializers.JSONField(required=False, help_text="An inline definition (stored too).")
    initialPayload = serializers.DictField(required=False, default=dict)
    callbackUrl = callback_url_field()


class AgentTriggerResponseSerializer(serializers.Serializer):
    sessionId = serializers.CharField()
    workflowId = serializers.CharField()
    message = serializers.CharField()


class RunRequestSerializer(serializers.Serializer):
    initialPayload = serializers.DictField(required=False, default=dict)
    agentId = serializers.CharField(required=False, allow_blank=True, default="")
    version = serializers.CharField(required=False, allow_blank=True, default="")
    callbackUrl = callback_url_field()


class RunResponseSerializer(AgentTriggerResponseSerializer):
    workflowVersion = serializers.CharField()


class TimingsSerializer(serializers.Serializer):
    queueWaitMs = serializers.IntegerField(allow_null=True)
    runMs = serializers.IntegerField(allow_null=True)
    totalMs = serializers.IntegerField(allow_null=True)


class TaskRunSerializer(serializers.Serializer):
    taskRunId = serializers.CharField()
    taskId = serializers.CharField()
    attempt = serializers.IntegerField()
    status = serializers.ChoiceField(choices=TaskRunStatus.choices)
    agentId = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    readyAt = serializers.DateTimeField()
    dispatchedAt = serializers.DateTimeField(allow_null=True)
    startedAt = serializers.DateTimeField(allow_null=True)
    endedAt = serializers.DateTimeField(allow_null=True)
    durationMs = serializers.IntegerField(allow_null=True)
    queueWaitMs = serializers.IntegerField(allow_null=True)
    dispatchLatencyMs = serializers.IntegerField(allow_null=True)
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    waitingReason = serializers.CharField(
        allow_null=True, help_text='Pending runs: why it is not dispatched yet (e.g. "limit summarise: 10/10").'
    )
    kind = serializers.ChoiceField(choices=TaskKind.choices)
    prompt = serializers.CharField(allow_null=True)
    answeredBy = serializers.CharField(allow_null=True)
    answeredAt = serializers.DateTimeField(allow_null=True)
    answeredVia = serializers.CharField(allow_null=True)


class HumanTaskSerializer(serializers.Serializer):
    sessionId = serializers.CharField()
    taskId = serializers.CharField()
    taskRunId = serializers.CharField()
    workflowId = serializers.CharField(allow_null=True)
    kind = serializers.ChoiceField(choices=TaskKind.choices)
    status = serializers.ChoiceField(choices=TaskRunStatus.choices)
    prompt = serializers.CharField(allow_blank=True)
    options = serializers.ListField(child=serializers.CharField(), allow_null=True)
    inputSchema = serializers.JSONField(allow_null=True)
    assignees = serializers.ListField(child=serializers.CharField())
    waitingSince = serializers.DateTimeField()
    timeoutAt = serializers.DateTimeField(allow_null=True)
    onTimeout = serializers.JSONField(allow_null=True)
    answer = serializers.JSONField(allow_null=True)
    answeredBy = serializers.CharField(allow_null=True)
    answeredAt = serializers.DateTimeField(allow_null=True)
    answeredVia = serializers.CharField(allow_null=True)
    result = serializers.JSONField(allow_null=True)


class TaskInputRequestSerializer(serializers.Serializer):
    """Documentation of the answer body; the service validates it against the task (option, inputSchema)."""

    option = serializers.CharField(required=False, help_text="Approval tasks: one of the task's options.")
    comment = serializers.CharField(required=False, allow_blank=True, help_text="Approval tasks.")
    value = serializers.JSONField(required=False, help_text="Input tasks: an object matching inputSchema.")


class SessionSummarySerializer(serializers.Serializer):
    sessionId = serializers.CharField()
    workflowId = serializers.CharField()
    workflowVersion = serializers.CharField()
    agentId = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=SessionStatus.choices)
    startedAt = serializers.DateTimeField(allow_null=True)
    endedAt = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    initialPayload = serializers.DictField()
    createdAt = serializers.DateTimeField()
    timings = TimingsSerializer()


class SessionDetailSerializer(SessionSummarySerializer):
    tasks = TaskRunSerializer(many=True)
