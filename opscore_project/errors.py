"""One error body for the whole API.

Every error answer looks like::

    {"status": "error", "code": "validation_error", "message": "Invalid request.",
     "errors": {"timestamp": ["Not an ISO-8601 timestamp with offset."]}}

``errors`` maps field names to messages and is present only when fields are at fault.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


# The challenge every 401 carries (DRF views, the state fast path, /metrics).
WWW_AUTHENTICATE = 'Bearer realm="opscore"'


class ApiError(exceptions.APIException):
    """The application's one exception type for API failures; the handler renders it."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(detail=message, code=code or self.default_code)
        if status_code is not None:
            self.status_code = status_code
        self.code = code or self.default_code
        self.message = message
        self.errors = errors


class ValidationFailed(ApiError):
    default_code = "validation_error"

    def __init__(self, errors: dict[str, list[str]], message: str = "Invalid request.") -> None:
        super().__init__(message, code="validation_error", status_code=400, errors=errors)


class NotFound(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="not_found", status_code=404)


class Conflict(ApiError):
    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message, code="conflict", status_code=409, errors=errors)


def error_body(code: str, message: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "code": code, "message": message}
    if errors:
        body["errors"] = errors
    return body


def _flatten(detail: Any) -> dict[str, list[str]]:
    """Turn DRF's nested ``ValidationError.detail`` into ``{"field.sub": ["msg"]}``."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list):
            if all(not isinstance(item, (dict, list)) for item in value):
                flat.setdefault(prefix or "non_field_errors", []).extend(str(v) for v in value)
            else:
                for index, sub in enumerate(value):
                    walk(f"{prefix}[{index}]", sub)
        else:
            flat.setdefault(prefix or "non_field_errors", []).append(str(value))

    walk("", detail)
    return flat


_DRF_CODES = {
    exceptions.NotAuthenticated: ("not_authenticated", 401),
    exceptions.AuthenticationFailed: ("authentication_failed", 401),
    exceptions.PermissionDenied: ("permission_denied", 403),
    exceptions.NotFound: ("not_found", 404),
    exceptions.MethodNotAllowed: ("method_not_allowed", 405),
    exceptions.NotAcceptable: ("not_acceptable", 406),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", 415),
    exceptions.Throttled: ("rate_limited", 429),
    exceptions.ParseError: ("malformed_json", 400),
}


# The database cannot be reached (restarting, failing over, out of connections): a temporary condition, answered
# 503 with Retry-After so clients and agents' SDKs retry, not 500 (a bug).
DATABASE_DOWN = (OperationalError, InterfaceError)
DATABASE_DOWN_ERROR = ("unavailable", "The database is unavailable; try again shortly.")
DATABASE_DOWN_RETRY_AFTER = 5


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler producing the single error body."""
    headers: dict[str, str] = {}
    if isinstance(exc, ApiError):
        return Response(error_body(exc.code, exc.message, exc.errors), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        return Response(error_body("validation_error", "Invalid request.", _flatten(exc.detail)), status=400)
    if isinstance(exc, exceptions.APIException):
        code, status_code = "error", exc.status_code
        for exc_type, (mapped_code, mapped_status) in _DRF_CODES.items():
            if isinstance(exc, exc_type):
                code, status_code = mapped_code, mapped_status
                break
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            headers["WWW-Authenticate"] = WWW_AUTHENTICATE
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return Response(error_body(code, str(message)), status=status_code, headers=headers)
    if isinstance(exc, DATABASE_DOWN):
        from rest_framework.views import set_rollback

        set_rollback()
        logger.warning("Database unavailable: %s", exc)
        return Response(
            error_body(*DATABASE_DOWN_ERROR), status=503, headers={"Retry-After": str(DATABASE_DOWN_RETRY_AFTER)}
        )
    # Anything else is a bug: log it with the traceback (the JSON formatter adds the request id) and answer
    # the standard body without internals, rather than letting DRF re-raise into Django's HTML 500.
    from rest_framework.views import set_rollback

    set_rollback()
    request = context.get("request")
    logger.error(
        "Unhandled exception in %s %s",
        getattr(request, "method", "?"),
        getattr(request, "path", "?"),
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return Response(error_body("internal_error", "Internal server error."), status=500)


def json_error(code: str, message: str, status_code: int, errors: dict[str, Any] | None = None) -> JsonResponse:
    """The same body for plain Django views (health, webhook, 404/500 handlers)."""
    return JsonResponse(error_body(code, message, errors), status=status_code)
