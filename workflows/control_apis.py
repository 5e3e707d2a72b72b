"""DRF views for the operator controls over dispatch (docs/api.md "Dispatch controls"). Thin: validate, call a
service in ``workflows.engine.controls``, answer with a selector's dict."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opscore_project.authn.scopes import OPERATOR
from opscore_project.errors import ValidationFailed
from opscore_project.pagination import StandardPagination
from opscore_project.schema import PAGE_PARAMETERS, error_responses, paginated_list_responses
from workflows import control_selectors as selectors
from workflows.engine import controls
from workflows.models import CapabilityLimit

MAX_LIMIT = 1_000_000


class WorkflowPauseRequestSerializer(serializers.Serializer):
    rejectWhenPaused = serializers.BooleanField(
        required=False, default=False, help_text="Refuse new sessions (409) instead of keeping them pending."
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class WorkflowLimitsRequestSerializer(serializers.Serializer):
    maxRunningSessions = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, allow_null=True, help_text="null removes the limit."
    )


class WorkflowControlSerializer(serializers.Serializer):
    workflowId = serializers.CharField()
    paused = serializers.BooleanField()
    pausedAt = serializers.DateTimeField(allow_null=True)
    rejectWhenPaused = serializers.BooleanField()
    pauseReason = serializers.CharField(allow_blank=True)
    maxRunningSessions = serializers.IntegerField(allow_null=True)
    runningSessions = serializers.IntegerField()
    pendingSessions = serializers.IntegerField()


class DispatchPauseRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class CapabilityLimitRequestSerializer(serializers.Serializer):
    maxInFlight = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT)


class CapabilityLimitSerializer(serializers.Serializer):
    capability = serializers.CharField()
    maxInFlight = serializers.IntegerField()
    inFlight = serializers.IntegerField()


class WorkflowLimitSerializer(serializers.Serializer):
    workflowId = serializers.CharField()
    maxRunningSessions = serializers.IntegerField()
    runningSessions = serializers.IntegerField()


class DispatchStatusSerializer(serializers.Serializer):
    paused = serializers.BooleanField(help_text="Maintenance mode: nothing is dispatched.")
    pausedAt = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    pausedWorkflows = serializers.ListField(child=serializers.CharField())
    workflowLimits = WorkflowLimitSerializer(many=True)
    capabilityLimits = CapabilityLimitSerializer(many=True)
    waitingTasks = serializers.IntegerField()


class WaitingRunSerializer(serializers.Serializer):
    taskRunId = serializers.CharField()
    sessionId = serializers.CharField()
    workflowId = serializers.CharField()
    taskId = serializers.CharField()
    capability = serializers.CharField()
    priority = serializers.IntegerField()
    agentId = serializers.CharField(allow_null=True, help_text="The only agent that may run it, if any.")
    readyAt = serializers.DateTimeField()
    waitingReason = serializers.CharField(help_text='e.g. "limit summarise: 10/10", "workflow paused".')


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    body = serializer_class(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data


def _workflow_control(workflow_id: str) -> Response:
    return Response(selectors.workflow_control_as_dict(controls.workflow_control_get(workflow_id=workflow_id)))


class WorkflowControlApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="workflows_controls",
        summary="A workflow's pause state and running-sessions limit, with its running and pending sessions",
        responses={200: WorkflowControlSerializer, **error_responses(401, 404)},
        tags=["dispatch controls"],
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        return _workflow_control(workflow_id)


class WorkflowPauseApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="workflows_pause",
        summary="Pause every version of a workflow: new sessions wait as pending (or are refused)",
        request=WorkflowPauseRequestSerializer,
        responses={200: WorkflowControlSerializer, **error_responses(400, 401, 404)},
        tags=["dispatch controls"],
    )
    def post(self, request: Request, workflow_id: str) -> Response:
        data = _valid(WorkflowPauseRequestSerializer, request)
        controls.workflow_pause(
            workflow_id=workflow_id, reject_when_paused=data["rejectWhenPaused"], reason=data["reason"]
        )
        return _workflow_control(workflow_id)


class WorkflowResumeApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="workflows_resume",
        summary="Resume a paused workflow: its pending sessions start",
        request=None,
        responses={200: WorkflowControlSerializer, **error_responses(401, 404)},
        tags=["dispatch controls"],
    )
    def post(self, request: Request, workflow_id: str) -> Response:
        controls.workflow_resume(workflow_id=workflow_id)
        return _workflow_control(workflow_id)


class WorkflowLimitsApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="workflows_limits_set",
        summary="Set or remove (null) the most sessions of a workflow running at once",
        request=WorkflowLimitsRequestSerializer,
        responses={200: WorkflowControlSerializer, **error_responses(400, 401, 404)},
        tags=["dispatch controls"],
    )
    def put(self, request: Request, workflow_id: str) -> Response:
        data = _valid(WorkflowLimitsRequestSerializer, request)
        controls.workflow_limits_set(workflow_id=workflow_id, max_running_sessions=data["maxRunningSessions"])
        return _workflow_control(workflow_id)


class DispatchStatusApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="dispatch_status",
        summary="Maintenance mode, paused workflows and every concurrency limit with its current usage",
        responses={200: DispatchStatusSerializer, **error_responses(401)},
        tags=["dispatch controls"],
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.dispatch_status())


class DispatchPauseApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="dispatch_pause",
        summary="Maintenance mode on: no engine dispatches anything (state reports are still applied)",
        request=DispatchPauseRequestSerializer,
        responses={200: DispatchStatusSerializer, **error_responses(400, 401)},
        tags=["dispatch controls"],
    )
    def post(self, request: Request) -> Response:
        data = _valid(DispatchPauseRequestSerializer, request)
        controls.dispatch_pause(reason=data["reason"])
        return Response(selectors.dispatch_status())


class DispatchResumeApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="dispatch_resume",
        summary="Maintenance mode off: dispatch starts again",
        request=None,
        responses={200: DispatchStatusSerializer, **error_responses(401)},
        tags=["dispatch controls"],
    )
    def post(self, request: Request) -> Response:
        controls.dispatch_resume()
        return Response(selectors.dispatch_status())


class WaitingRunsApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="dispatch_waiting",
        summary="Task runs waiting for dispatch, in dispatch order, each with why it waits",
        parameters=PAGE_PARAMETERS,
        responses=paginated_list_responses(WaitingRunSerializer, 401),
        tags=["dispatch controls"],
    )
    def get(self, request: Request) -> Response:
        paginator = StandardPagination()
        page = list(paginator.paginate_queryset(selectors.waiting_runs(), request, view=self))
        reasons = selectors.waiting_reasons(page, now=timezone.now())
        return paginator.get_paginated_response(
            [selectors.waiting_run_as_dict(run, reasons.get(run.pk, "")) for run in page]
        )


class CapabilityLimitListApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="capability_limits_list",
        summary="Every capability limit with its tasks in flight",
        parameters=PAGE_PARAMETERS,
        responses=paginated_list_responses(CapabilityLimitSerializer, 401),
        tags=["dispatch controls"],
    )
    def get(self, request: Request) -> Response:
        paginator = StandardPagination()
        page = paginator.paginate_queryset(CapabilityLimit.objects.order_by("capability"), request, view=self)
        return paginator.get_paginated_response([selectors.capability_limit_as_dict(limit) for limit in page])


class CapabilityLimitApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="capability_limits_set",
        summary="Set the most tasks of a capability dispatched or running at once",
        request=CapabilityLimitRequestSerializer,
        responses={200: CapabilityLimitSerializer, **error_responses(400, 401)},
        tags=["dispatch controls"],
    )
    def put(self, request: Request, capability: str) -> Response:
        if len(capability) > CapabilityLimit._meta.get_field("capability").max_length:
            raise ValidationFailed({"capability": ["At most 255 characters."]})
        data = _valid(CapabilityLimitRequestSerializer, request)
        limit = controls.capability_limit_set(capability=capability, max_in_flight=data["maxInFlight"])
        return Response(selectors.capability_limit_as_dict(limit))

    @extend_schema(
        operation_id="capability_limits_delete",
        summary="Remove a capability's limit",
        request=None,
        responses={204: None, **error_responses(401, 404)},
        tags=["dispatch controls"],
    )
    def delete(self, request: Request, capability: str) -> Response:
        controls.capability_limit_delete(capability=capability)
        return Response(status=status.HTTP_204_NO_CONTENT)
