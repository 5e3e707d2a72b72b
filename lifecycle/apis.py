"""DRF views for agents and their states. Thin: validate, call a service or selector, serialise."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lifecycle import controls, selectors
from lifecycle.fastpath import accepted_body, state_report_accept
from lifecycle.models import AgentSource, AgentState
from lifecycle.serializers import (
    AgentDetailSerializer,
    AgentSerializer,
    CapabilitiesRequestSerializer,
    CurrentStateSerializer,
    QuarantineRequestSerializer,
    StateRecordSerializer,
    StateReportAcceptedSerializer,
    StateReportRequestSerializer,
)
from opscore_project.authn.scopes import AGENT, OPERATOR
from opscore_project.errors import NotFound, ValidationFailed
from opscore_project.pagination import StandardPagination
from opscore_project.schema import PAGE_PARAMETERS, error_responses, paginated_list_responses


def _agent_or_404(agent_id: str):
    agent = selectors.agent_get(agent_id=agent_id)
    if agent is None:
        raise NotFound(f"Agent {agent_id!r} is not known to Ops-Core.")
    return agent


def _optional_bool(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in {"true", "1", "yes"}:
        return True
    if raw.lower() in {"false", "0", "no"}:
        return False
    raise ValidationFailed({name: ["Use true or false."]})


class AgentStateApi(APIView):
    """``/v1/opscore/agent/{agentId}/state`` — the AgentKit SDK's state report, and the current state."""

    required_scopes = {"GET": AGENT, "POST": AGENT}
    # The body is parsed by lifecycle.validation (a wrong content type is a 400 naming the header).
    parser_classes: list = []

    @extend_schema(
        operation_id="agent_state_report",
        summary="Report an agent's state (AgentKit SDK)",
        request=StateReportRequestSerializer,
        responses={202: StateReportAcceptedSerializer, **error_responses(400, 401)},
        tags=["agents"],
    )
    def post(self, request: Request, agent_id: str) -> Response:
        # Bearer requests are answered by lifecycle.fastpath before reaching DRF; this serves session-authenticated
        # operators (browsable API) with the same code.
        report = state_report_accept(agent_id=agent_id, content_type=request.content_type or "", body=request.body)
        return Response(accepted_body(report.agent_id), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="agent_state_get",
        summary="Get an agent's current state",
        responses={200: CurrentStateSerializer, **error_responses(401, 404)},
        tags=["agents"],
    )
    def get(self, request: Request, agent_id: str) -> Response:
        agent = selectors.agent_get(agent_id=agent_id)
        if agent is None or not agent.state:
            raise NotFound(f"Ops-Core has no state for agent {agent_id!r}.")
        return Response(CurrentStateSerializer(agent).data)


class AgentListApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="agents_list",
        summary="List agents",
        parameters=[
            OpenApiParameter("state", OpenApiTypes.STR, enum=AgentState.values),
            OpenApiParameter("capability", OpenApiTypes.STR),
            OpenApiParameter("registered", OpenApiTypes.BOOL),
            OpenApiParameter("stale", OpenApiTypes.BOOL),
            OpenApiParameter("source", OpenApiTypes.STR, enum=AgentSource.values),
            OpenApiParameter("search", OpenApiTypes.STR, description="Substring of agent id or name."),
            OpenApiParameter("drained", OpenApiTypes.BOOL, description="Drained (true) or in rotation (false)."),
            OpenApiParameter("quarantined", OpenApiTypes.BOOL, description="Circuit breaker open or half-open."),
            *PAGE_PARAMETERS,
        ],
        responses=paginated_list_responses(AgentSerializer, 400, 401),
        tags=["agents"],
    )
    def get(self, request: Request) -> Response:
        state = request.query_params.get("state") or None
        if state and state not in AgentState.values:
            raise ValidationFailed({"state": [f"Unknown state; accepted: {', '.join(AgentState.values)}."]})
        queryset = selectors.agent_list(
            state=state,
            capability=request.query_params.get("capability") or None,
            registered=_optional_bool(request, "registered"),
            stale=_optional_bool(request, "stale"),
            source=request.query_params.get("source") or None,
            search=request.query_params.get("search") or None,
            drained=_optional_bool(request, "drained"),
            quarantined=_optional_bool(request, "quarantined"),
        )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(AgentSerializer(page, many=True).data)


class AgentDetailApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="agents_get",
        summary="One agent with its 20 most recent state reports",
        responses={200: AgentDetailSerializer, **error_responses(401, 404)},
        tags=["agents"],
    )
    def get(self, request: Request, agent_id: str) -> Response:
        return Response(AgentDetailSerializer(_agent_or_404(agent_id)).data)


class AgentHistoryApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="agents_history",
        summary="An agent's state history, newest first (paginated)",
        parameters=PAGE_PARAMETERS,
        responses=paginated_list_responses(StateRecordSerializer, 401),
        tags=["agents"],
    )
    def get(self, request: Request, agent_id: str) -> Response:
        agent = _agent_or_404(agent_id)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(selectors.agent_history(agent=agent), request, view=self)
        return paginator.get_paginated_response(StateRecordSerializer(page, many=True).data)


# --- operator controls (docs/operations.md) ---------------------------------------------------------------------


class AgentDrainApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="agents_drain",
        summary="Drain an agent: no new tasks, its current task finishes (idempotent)",
        request=None,
        responses={200: AgentSerializer, **error_responses(401, 404)},
        tags=["agents"],
    )
    def post(self, request: Request, agent_id: str) -> Response:
        return Response(AgentSerializer(controls.agent_drain(agent_id=agent_id)).data)


class AgentUndrainApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="agents_undrain",
        summary="Return a drained agent to rotation (idempotent)",
        request=None,
        responses={200: AgentSerializer, **error_responses(401, 404)},
        tags=["agents"],
    )
    def post(self, request: Request, agent_id: str) -> Response:
        return Response(AgentSerializer(controls.agent_undrain(agent_id=agent_id)).data)


class AgentQuarantineApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="agents_quarantine",
        summary="Quarantine an agent by hand (for `seconds`, then one trial task; or until released)",
        request=QuarantineRequestSerializer,
        responses={200: AgentSerializer, **error_responses(400, 401, 404)},
        tags=["agents"],
    )
    def post(self, request: Request, agent_id: str) -> Response:
        body = QuarantineRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        agent = controls.agent_quarantine(
            agent_id=agent_id, seconds=body.validated_data.get("seconds"), reason=body.validated_data["reason"]
        )
        return Response(AgentSerializer(agent).data)


class AgentReleaseApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="agents_release",
        summary="Release an agent from quarantine: its circuit breaker closes (idempotent)",
        request=None,
        responses={200: AgentSerializer, **error_responses(401, 404)},
        tags=["agents"],
    )
    def post(self, request: Request, agent_id: str) -> Response:
        return Response(AgentSerializer(controls.agent_quarantine_release(agent_id=agent_id)).data)


class AgentCapabilitiesApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="agents_set_capabilities",
        summary="Set an agent's capabilities (known from now on, source `operator`)",
        request=CapabilitiesRequestSerializer,
        responses={200: AgentSerializer, **error_responses(400, 401, 404)},
        tags=["agents"],
    )
    def put(self, request: Request, agent_id: str) -> Response:
        body = CapabilitiesRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        agent = controls.agent_capabilities_set(agent_id=agent_id, capabilities=body.validated_data["capabilities"])
        return Response(AgentSerializer(agent).data)
