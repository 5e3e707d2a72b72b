"""Request ids, one structured log line per request, and the API error body for non-DRF error answers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from opscore_project.errors import error_body
from opscore_project.observability.context import (
    bind_log_ids,
    get_log_ids,
    new_request_id,
    request_id_var,
    reset_log_ids,
    valid_request_id,
)

logger = logging.getLogger("opscore.request")

REQUEST_ID_HEADER = "X-Request-ID"
API_PREFIXES = ("/v1/", "/api/", "/health", "/metrics")

# Error answers Django (not DRF) produces for API paths get the API body with these codes.
_FALLBACK_CODES = {
    400: ("bad_request", "Bad request."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    413: ("payload_too_large", "Request body too large."),
    415: ("unsupported_media_type", "Unsupported media type."),
    500: ("internal_error", "Internal server error."),
    503: ("unavailable", "Service unavailable."),
}


def _is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def _uniform_error(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Rewrite a non-JSON error answer on an API path (Django's 405, CSRF 403, …) into the error body."""
    if response.status_code < 400 or not _is_api_path(request.path):
        return response
    if response.get("Content-Type", "").startswith("application/json") or getattr(response, "streaming", False):
        return response
    code, message = _FALLBACK_CODES.get(
        response.status_code, ("error", f"Request failed with status {response.status_code}.")
    )
    if response.status_code == 405 and response.has_header("Allow"):
        message = f"Method {request.method} not allowed; allowed: {response['Allow']}."
    replacement = HttpResponse(
        json.dumps(error_body(code, message)), status=response.status_code, content_type="application/json"
    )
    for header in ("Allow", "WWW-Authenticate", "Retry-After"):
        if response.has_header(header):
            replacement[header] = response[header]
    return replacement


class RequestLogMiddleware:
    """Assigns the request id (a valid incoming ``X-Request-ID`` or a new one), binds agent/session ids from
    the URL, logs one JSON line per request and returns the id in the response header.

    Placed first in MIDDLEWARE so the duration covers the whole stack and every later log line has the id.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        # META rather than request.headers: building the headers mapping costs more than the rest of this line.
        request_id = valid_request_id(request.META.get("HTTP_X_REQUEST_ID")) or new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        id_token = request_id_var.set(request_id)
        ids_token = bind_log_ids()
        try:
            response = self.get_response(request)
            response = _uniform_error(request, response)
            response[REQUEST_ID_HEADER] = request_id
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            fields = {
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
            }
            fields.update(get_log_ids())
            level = logging.ERROR if response.status_code >= 500 else logging.INFO
            logger.log(level, f"{request.method} {request.path} {response.status_code}", extra=fields)
            return response
        finally:
            reset_log_ids(ids_token)
            request_id_var.reset(id_token)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        ids = {key: view_kwargs[key] for key in ("agent_id", "session_id", "task_id") if view_kwargs.get(key)}
        if ids:
            bind_log_ids(**ids)
        return None
