"""Shared OpenAPI pieces: the error body and standard error responses for ``extend_schema``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    status = serializers.CharField(default="error")
    code = serializers.CharField(help_text="Machine-readable error code, e.g. validation_error, not_found.")
    message = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field name → messages, when fields are at fault.",
    )


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid request (see `errors`).",
        401: "Missing or invalid API key.",
        403: "The credentials lack the scope this operation needs (the message names it).",
        404: "Not found.",
        409: "Conflict with the current state.",
        415: "Unsupported content type.",
        429: "Too many requests: failed authentications from this address, or writes with this key (see the "
        "Retry-After header).",
        503: "Unavailable.",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=descriptions.get(code, "Error.")) for code in codes}


_PAGINATED: dict[type, Any] = {}


def paginated(serializer_class: type[serializers.Serializer]) -> Any:
    """The response of a list endpoint: ``{count, next, previous, results: [item…]}`` (StandardPagination)."""
    if serializer_class not in _PAGINATED:
        name = serializer_class.__name__.removesuffix("Serializer")
        _PAGINATED[serializer_class] = inline_serializer(
            f"Paginated{name}List",
            {
                "count": serializers.IntegerField(min_value=0),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": serializer_class(many=True),
            },
        )
    return _PAGINATED[serializer_class]


def paginated_list_responses(serializer_class: type[serializers.Serializer], *error_codes: int) -> dict:
    """200 with one page, and 404 for a page number past the last page (or below 1)."""
    responses = {200: paginated(serializer_class), **error_responses(*error_codes)}
    responses[404] = OpenApiResponse(ErrorSerializer, description="Not found, or `page` is past the last page.")
    return responses


PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="Pages start at 1; a page past the last one answers 404."),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="Items per page (default 50, at most 500)."),
]


def _error_response(code: int) -> dict[str, Any]:
    return {
        "description": error_responses(code)[code].description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def document_common_errors(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Postprocessing hook: add the error answers every operation of a kind can give, so the schema describes
    every answer without each view listing them:

    - 400 on every operation: the NUL guard (opscore_project.inputguard) refuses any input holding U+0000;
    - 401, 403 and 429 on every Bearer-authenticated operation (no or bad key, missing scope, throttles);
    - 415 on every operation with a JSON body parsed by DRF (the state report answers 400 naming Content-Type).
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    if "Error" not in schemas:  # pragma: no cover - always present while views use error_responses
        return result
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            needed = {400}
            if any(requirement for requirement in operation.get("security") or []):
                needed |= {401, 403, 429}
            if "requestBody" in operation and operation.get("operationId") != "agent_state_report":
                needed.add(415)
            for code in sorted(needed):
                responses.setdefault(str(code), _error_response(code))
    return result


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "opscore_project.authn.authentication.BearerAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "OPSCORE_API_KEY (scope agent) or an API token with its scopes (docs/security.md).",
        }
