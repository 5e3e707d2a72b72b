"""``GET /v1/opscore/events`` — the operation log."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opscore_project.authn.scopes import OPERATOR
from opscore_project.errors import ValidationFailed
from opscore_project.lib.timeparse import parse_iso_timestamp
from opscore_project.observability import selectors
from opscore_project.observability.models import EventLevel
from opscore_project.observability.serializers import EventSerializer
from opscore_project.pagination import StandardPagination
from opscore_project.schema import PAGE_PARAMETERS, paginated_list_responses


def parse_event_filters(params, *, assume_utc: bool = False) -> selectors.EventFilters:
    """Validate the query string of the events API. The dashboard passes ``assume_utc`` so its time fields
    accept ``2026-01-01T10:00`` (read as UTC); the API insists on an explicit offset."""
    errors: dict[str, list[str]] = {}
    moments = {}
    for name in ("since", "until"):
        raw = (params.get(name) or "").strip()
        moments[name] = None
        if raw:
            raw = raw.replace(" ", "+")
            if assume_utc and parse_iso_timestamp(raw) is None:
                raw += "+00:00"
            moments[name] = parse_iso_timestamp(raw)
            if moments[name] is None:
                errors[name] = ["Not an ISO-8601 timestamp with offset."]
    level = (params.get("level") or "").strip() or None
    if level and any(value.strip() not in EventLevel.values for value in level.split(",") if value.strip()):
        errors["level"] = [f"Unknown level; accepted: {', '.join(EventLevel.values)}."]
    after = None
    raw_after = (params.get("after") or "").strip()
    if raw_after:
        try:
            after = int(raw_after)
        except ValueError:
            errors["after"] = ["An event id (integer)."]
    if errors:
        raise ValidationFailed(errors)
    return selectors.EventFilters(
        agent=(params.get("agent") or "").strip() or None,
        session=(params.get("session") or "").strip() or None,
        level=level,
        type=(params.get("type") or "").strip() or None,
        since=moments["since"],
        until=moments["until"],
        q=(params.get("q") or "").strip()[:200] or None,
        after=after,
    )


class EventListApi(APIView):
    required_scope = OPERATOR

    @extend_schema(
        operation_id="events_list",
        summary="Operation log events (newest first; with `after`, newer than that id, oldest first)",
        parameters=[
            OpenApiParameter("agent", OpenApiTypes.STR, description="Exact agentId."),
            OpenApiParameter("session", OpenApiTypes.STR, description="Exact sessionId."),
            OpenApiParameter("level", OpenApiTypes.STR, description="debug|info|warning|error, or a comma list."),
            OpenApiParameter("type", OpenApiTypes.STR, description="Event type, comma list, or prefix `task.*`."),
            OpenApiParameter("since", OpenApiTypes.DATETIME),
            OpenApiParameter("until", OpenApiTypes.DATETIME),
            OpenApiParameter("q", OpenApiTypes.STR, description="Free text over message, type and ids."),
            OpenApiParameter("after", OpenApiTypes.INT, description="Follow: events with a larger id."),
            *PAGE_PARAMETERS,
        ],
        responses=paginated_list_responses(EventSerializer, 400, 401),
        tags=["operations"],
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.event_list(parse_event_filters(request.query_params))
        paginator = StandardPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(EventSerializer(page, many=True).data)
