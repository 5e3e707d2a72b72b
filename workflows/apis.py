"""DRF views for workflow definitions, triggers and sessions (docs/api.md). Thin: validate, call a service."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lifecycle.models import Agent
from lifecycle.selectors import agent_get
from opscore_project.authn.scopes import AGENT, OPERATOR
from opscore_project.errors import NotFound, ValidationFailed
from opscore_project.lib.timeparse import parse_iso_timestamp
from opscore_project.pagination import StandardPagination
from opscore_project.schema import PAGE_PARAMETERS, error_responses, paginated_list_responses
from workflows import selectors, services
from workflows.engine import human
from workflows.models import DefinitionSource, SessionStatus, TaskKind
from workflows.serializers import (
    AgentTriggerRequestSerializer,
    AgentTriggerResponseSerializer,
    DefinitionResponseSerializer,
    DefinitionSerializer,
    HumanTaskSerializer,
    RunRequestSerializer,
    RunResponseSerializer,
    SessionDetailSerializer,
    SessionSummarySerializer,
    TaskInputRequestSerializer,
)

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="The same key returns the same session.",
)
PAGE_PARAMS = PAGE_PARAMETERS


def _paginated(request: Request, view: APIView, queryset, to_dict) -> Response:
    paginator = StandardPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response([to_dict(item) for item in page])


def _idempotency_key(request: Request) -> str | None:
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if len(key) > 255:
        raise ValidationFailed({"Idempotency-Key": ["At most 255 characters."]})
    return key or None


def _agent_or_404(agent_id: str) -> Agent:
    agent = agent_get(agent_id=agent_id)
    if agent is None:
        raise NotFound(f"Agent {agent_id!r} is not known to Ops-Core.")
    return agent


class WorkflowListApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="workflows_list",
        summary="List workflow definitions (latest version of each id)",
        parameters=PAGE_PARAMS,
        responses=paginated_list_responses(DefinitionResponseSerializer, 401),
        tags=["workflows"],
    )
    def get(self, request: Request) -> Response:
        return _paginated(request, self, selectors.definition_latest_list(), selectors.definition_as_dict)

    @extend_schema(
        operation_id="workflows_create",
        summary="Create a workflow definition version",
        description="201 created; 200 when the same id+version with identical content exists; 409 when it "
        "exists with different content; 400 naming each faulty field (e.g. `tasks[1].nextTaskId`).",
        request=DefinitionSerializer,
        responses={
            201: DefinitionResponseSerializer,
            200: DefinitionResponseSerializer,
            **error_responses(400, 401, 409),
        },
        tags=["workflows"],
    )
    def post(self, request: Request) -> Response:
        definition, created = services.definition_create(data=request.data, source=DefinitionSource.API)
        return Response(
            selectors.definition_as_dict(definition), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class WorkflowDetailApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="workflows_get",
        summary="One workflow definition (latest version unless ?version=)",
        parameters=[OpenApiParameter("version", OpenApiTypes.STR)],
        responses={200: DefinitionResponseSerializer, **error_responses(401, 404)},
        tags=["workflows"],
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        definition = services.definition_get(
            workflow_id=workflow_id, version=request.query_params.get("version") or None
        )
        return Response(selectors.definition_as_dict(definition))


class WorkflowVersionsApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="workflows_versions",
        summary="Every version of a workflow definition, newest first",
        parameters=PAGE_PARAMS,
        responses=paginated_list_responses(DefinitionResponseSerializer, 401),
        tags=["workflows"],
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        queryset = selectors.definition_versions(workflow_id=workflow_id)
        if not queryset.exists():
            raise NotFound(f"Workflow definition {workflow_id!r} does not exist.")
        return _paginated(request, self, queryset, selectors.definition_as_dict)


class WorkflowRunApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="workflows_run",
        summary="Run a workflow (tasks routed by capability unless agentId is given)",
        description="409 while the workflow is paused with rejectWhenPaused (a plain pause keeps the session "
        "pending instead).",
        request=RunRequestSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={202: RunResponseSerializer, **error_responses(400, 401, 404, 409)},
        tags=["workflows"],
    )
    def post(self, request: Request, workflow_id: str) -> Response:
        body = RunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        key = _idempotency_key(request)
        definition = services.definition_get(workflow_id=workflow_id, version=data["version"] or None)
        agent = _agent_or_404(data["agentId"]) if data["agentId"] else None
        session, created = services.session_start(
            definition=definition,
            agent=agent,
            initial_payload=data["initialPayload"],
            callback_url=data["callbackUrl"],
            idempotency_key=key,
        )
        return Response(
            {
                "sessionId": str(session.id),
                "workflowId": session.workflow_id,
                "workflowVersion": session.definition.version,
                "message": "Workflow session started." if created else "Existing session for this Idempotency-Key.",
            },
            status=status.HTTP_202_ACCEPTED,
        )


def _inline_default_id(raw: Any) -> str:
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"inline-{digest}"


class AgentWorkflowApi(APIView):
    """``POST /v1/opscore/agent/{agentId}/workflow`` — contract section 5, exactly."""

    required_scope = AGENT

    @extend_schema(
        operation_id="agent_workflow_trigger",
        summary="Start a workflow for an agent (workflowDefinitionId or an inline workflowDefinition)",
        request=AgentTriggerRequestSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={202: AgentTriggerResponseSerializer, **error_responses(400, 401, 404, 409)},
        tags=["workflows"],
    )
    def post(self, request: Request, agent_id: str) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationFailed({"non_field_errors": ["The body must be a JSON object."]})
        has_id = request.data.get("workflowDefinitionId") not in (None, "")
        has_inline = request.data.get("workflowDefinition") is not None
        if has_id == has_inline:
            raise ValidationFailed(
                {"workflowDefinitionId": ["Give exactly one of workflowDefinitionId or workflowDefinition."]}
            )
        body = AgentTriggerRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        key = _idempotency_key(request)
        if has_id:
            definition = services.definition_get(workflow_id=str(data["workflowDefinitionId"]))
            agent = _agent_or_404(agent_id)
        else:
            agent = _agent_or_404(agent_id)
            raw = data["workflowDefinition"]
            try:
                definition, _ = services.definition_create(
                    data=raw, source=DefinitionSource.INLINE, default_id=_inline_default_id(raw)
                )
            except ValidationFailed as exc:
                raise ValidationFailed(
                    {f"workflowDefinition.{path}": messages for path, messages in (exc.errors or {}).items()},
                    message=exc.message,
                ) from exc
        session, created = services.session_start(
            definition=definition,
            agent=agent,
            initial_payload=data["initialPayload"],
            callback_url=data["callbackUrl"],
            idempotency_key=key,
        )
        return Response(
            {
                "sessionId": str(session.id),
                "workflowId": session.workflow_id,
                "message": "Workflow session started." if created else "Existing session for this Idempotency-Key.",
            },
            status=status.HTTP_202_ACCEPTED,
        )


class SessionListApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="sessions_list",
        summary="List workflow sessions, newest first",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=SessionStatus.values),
            OpenApiParameter("workflow", OpenApiTypes.STR, description="Workflow definition id."),
            OpenApiParameter("agent", OpenApiTypes.STR, description="Triggered for, or ran a task on, this agent."),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Created at or after (ISO-8601)."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Created before (ISO-8601)."),
            *PAGE_PARAMS,
        ],
        responses=paginated_list_responses(SessionSummarySerializer, 400, 401),
        tags=["sessions"],
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        status_ = params.get("status") or None
        if status_ and status_ not in SessionStatus.values:
            raise ValidationFailed({"status": [f"Unknown status; accepted: {', '.join(SessionStatus.values)}."]})
        bounds = {}
        for name in ("since", "until"):
            raw = params.get(name)
            if raw:
                bounds[name] = parse_iso_timestamp(raw)
                if bounds[name] is None:
                    raise ValidationFailed({name: ["Not an ISO-8601 timestamp with offset."]})
        queryset = selectors.session_list(
            status=status_, workflow=params.get("workflow") or None, agent=params.get("agent") or None, **bounds
        )
        return _paginated(request, self, queryset, selectors.session_summary)


def _session_or_404(session_id: str):
    session = selectors.session_get(session_id=session_id)
    if session is None:
        raise NotFound(f"Session {session_id} does not exist.")
    return session


class SessionDetailApi(APIView):
    # Agents (and the AgentKit SDK) follow a session they started by its id (contract section 5).
    required_scope = AGENT

    @extend_schema(
        operation_id="sessions_get",
        summary="One session with its task runs (the timeline)",
        responses={200: SessionDetailSerializer, **error_responses(401, 404)},
        tags=["sessions"],
    )
    def get(self, request: Request, session_id: str) -> Response:
        return Response(selectors.session_detail(_session_or_404(session_id)))


class SessionCancelApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="sessions_cancel",
        summary="Cancel a session (no further dispatch; running tasks cancelled, agents freed)",
        request=None,
        responses={200: SessionDetailSerializer, **error_responses(401, 404, 409)},
        tags=["sessions"],
    )
    def post(self, request: Request, session_id: str) -> Response:
        _session_or_404(session_id)
        services.session_cancel(session_id=session_id)
        return Response(selectors.session_detail(_session_or_404(session_id)))


class SessionRetryApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="sessions_retry",
        summary="Re-run a failed session from its failed step(s), keeping completed steps",
        request=None,
        responses={202: SessionDetailSerializer, **error_responses(401, 404, 409)},
        tags=["sessions"],
    )
    def post(self, request: Request, session_id: str) -> Response:
        _session_or_404(session_id)
        services.session_retry(session_id=session_id)
        return Response(selectors.session_detail(_session_or_404(session_id)), status=status.HTTP_202_ACCEPTED)


INTERFACE_HEADER = OpenApiParameter(
    "X-OpsCore-Interface",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    enum=["api", "sdk", "cli"],
    description="Recorded in the answer's audit as the interface it came from (default api).",
)


def _interface(request: Request) -> str:
    """Where an answer came from, for its audit: what the SDK and CLI say, ``dashboard`` only for a logged-in
    staff user's browser (a token cannot claim it)."""
    claimed = (request.headers.get("X-OpsCore-Interface") or "api").strip().lower()
    if claimed in ("api", "sdk", "cli"):
        return claimed
    if claimed == "dashboard" and getattr(request.user, "owner", None) is None:
        return "dashboard"
    return "api"


def _human_task(run) -> dict[str, Any]:
    return human.human_task_as_dict(run, selectors.human_task_definition(run))


class InboxApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="inbox_list",
        summary="Human tasks waiting for input that the caller may answer, oldest first",
        parameters=[
            OpenApiParameter("workflow", OpenApiTypes.STR, description="Workflow definition id."),
            OpenApiParameter("session", OpenApiTypes.STR, description="Session id."),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=[TaskKind.APPROVAL, TaskKind.INPUT]),
            *PAGE_PARAMS,
        ],
        responses=paginated_list_responses(HumanTaskSerializer, 400, 401),
        tags=["inbox"],
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        kind = params.get("kind") or None
        if kind and kind not in (TaskKind.APPROVAL, TaskKind.INPUT):
            raise ValidationFailed({"kind": ["Unknown kind; accepted: approval, input."]})
        runs = selectors.human_task_inbox(
            actor=human.actor_for(request.user),
            workflow=params.get("workflow") or None,
            session=params.get("session") or None,
            kind=kind,
        )
        return _paginated(request, self, runs, _human_task)


class TaskInputApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="sessions_task_input",
        summary="Answer a human task: approve/reject an approval, or submit an input task's value",
        description='Body `{"option": "approve", "comment": "…"}` for an approval, `{"value": {…}}` for an '
        "input. 403 when the caller is not among the task's assignees; 409 when it was answered already (the "
        "message names who answered first) or is not waiting; 400 naming each bad field. The same "
        "Idempotency-Key from the same caller returns the stored answer.",
        request=TaskInputRequestSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                required=False,
                description="Repeating the request with the same key returns the stored answer.",
            ),
            INTERFACE_HEADER,
        ],
        responses={200: HumanTaskSerializer, **error_responses(400, 401, 403, 404, 409)},
        tags=["inbox"],
    )
    def post(self, request: Request, session_id: str, task_id: str) -> Response:
        run, _ = human.human_task_answer(
            session_id=session_id,
            task_id=task_id,
            actor=human.actor_for(request.user),
            body=request.data,
            interface=_interface(request),
            idempotency_key=_idempotency_key(request),
        )
        return Response(_human_task(run))
