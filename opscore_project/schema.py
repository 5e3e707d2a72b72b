"""Shared OpenAPI pieces: the error body and standard error responses for ``extend_schema``."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
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
        403: "Not allowed.",
        404: "Not found.",
        409: "Conflict with the current state.",
        415: "Unsupported content type.",
        503: "Unavailable.",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=descriptions.get(code, "Error.")) for code in codes}


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "opscore_project.authn.authentication.BearerAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "OPSCORE_API_KEY (agents) or a personal API token created in the admin.",
        }
