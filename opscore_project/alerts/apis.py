"""DRF views for alert rules and alerts (operator scope). Thin: validate, call a service or selector."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opscore_project.alerts import selectors, services
from opscore_project.alerts.models import AlertStatus
from opscore_project.alerts.serializers import AlertRuleRequestSerializer, AlertRuleSerializer, AlertSerializer
from opscore_project.authn.scopes import OPERATOR
from opscore_project.errors import ValidationFailed
from opscore_project.pagination import StandardPagination
from opscore_project.schema import PAGE_PARAMETERS, error_responses, paginated_list_responses


def _paginated(request: Request, view: APIView, queryset, to_dict) -> Response:
    paginator = StandardPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response([to_dict(item) for item in page])


class AlertRuleListApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="alert_rules_list",
        summary="List alert rules",
        parameters=PAGE_PARAMETERS,
        responses=paginated_list_responses(AlertRuleSerializer, 401),
        tags=["alerts"],
    )
    def get(self, request: Request) -> Response:
        return _paginated(request, self, selectors.rule_list(), selectors.rule_as_dict)

    @extend_schema(
        operation_id="alert_rules_create",
        summary="Create an alert rule (a condition, a channel and a quiet period)",
        request=AlertRuleRequestSerializer,
        responses={201: AlertRuleSerializer, **error_responses(400, 401, 409)},
        tags=["alerts"],
    )
    def post(self, request: Request) -> Response:
        body = AlertRuleRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rule = services.alert_rule_create(**body.service_values())
        return Response(selectors.rule_as_dict(rule), status=status.HTTP_201_CREATED)


class AlertRuleDetailApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="alert_rules_get",
        summary="One alert rule",
        responses={200: AlertRuleSerializer, **error_responses(401, 404)},
        tags=["alerts"],
    )
    def get(self, request: Request, rule_id: str) -> Response:
        return Response(selectors.rule_as_dict(services.alert_rule_get(rule_id=rule_id)))

    @extend_schema(
        operation_id="alert_rules_update",
        summary="Change some fields of an alert rule",
        request=AlertRuleRequestSerializer(partial=True),
        responses={200: AlertRuleSerializer, **error_responses(400, 401, 404, 409)},
        tags=["alerts"],
    )
    def patch(self, request: Request, rule_id: str) -> Response:
        services.alert_rule_get(rule_id=rule_id)
        body = AlertRuleRequestSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        rule = services.alert_rule_update(rule_id=rule_id, **body.service_values())
        return Response(selectors.rule_as_dict(rule))

    @extend_schema(
        operation_id="alert_rules_delete",
        summary="Delete an alert rule with its alerts",
        request=None,
        responses={204: None, **error_responses(401, 404)},
        tags=["alerts"],
    )
    def delete(self, request: Request, rule_id: str) -> Response:
        services.alert_rule_delete(rule_id=rule_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlertListApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="alerts_list",
        summary="List alerts, newest first, each with its deliveries",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=AlertStatus.values),
            OpenApiParameter("rule", OpenApiTypes.INT, description="Only this rule's alerts."),
            *PAGE_PARAMETERS,
        ],
        responses=paginated_list_responses(AlertSerializer, 400, 401),
        tags=["alerts"],
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        status_ = params.get("status") or None
        if status_ and status_ not in AlertStatus.values:
            raise ValidationFailed({"status": [f"Unknown status; accepted: {', '.join(AlertStatus.values)}."]})
        rule_id = None
        if params.get("rule"):
            try:
                rule_id = int(params["rule"])
            except ValueError:
                raise ValidationFailed({"rule": ["A rule id (an integer)."]}) from None
            if not -(2**63) < rule_id < 2**63:
                raise ValidationFailed({"rule": ["A rule id (an integer)."]})
        queryset = selectors.alert_list(status=status_, rule_id=rule_id)
        return _paginated(request, self, queryset, selectors.alert_as_dict)
