"""Refuse NUL characters in API input before any view sees them.

PostgreSQL cannot store U+0000 in ``text`` or ``jsonb``: a NUL that reached a query or an insert would be a 500
after part of the work was done. This middleware answers 400 naming the field instead, for the path, the query
string, the headers and JSON bodies of every API path, so no endpoint (present or future) has to remember it.
It runs before the state report fast path; a body costs one substring search unless it really holds an escaped
NUL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from opscore_project.errors import error_body

API_PREFIXES = ("/v1/", "/api/", "/health", "/metrics")
NUL = "\x00"
MESSAGE = "NUL characters (\\u0000) are not allowed."


def _printable(name: str) -> str:
    return name.replace(NUL, "\\u0000")


def nul_field_in_json(value: Any, prefix: str = "") -> str | None:
    """The dotted path of the first string (or key) in ``value`` holding a NUL, or None."""
    if isinstance(value, str):
        return (prefix or "body") if NUL in value else None
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if NUL in key:
                return _printable(path)
            found = nul_field_in_json(sub, path)
            if found:
                return found
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            found = nul_field_in_json(sub, f"{prefix}[{index}]" if prefix else f"[{index}]")
            if found:
                return found
    return None


def _path_field(path: str) -> str:
    try:
        match = resolve(path)
    except Resolver404:
        return "path"
    for name, value in match.kwargs.items():
        if isinstance(value, str) and NUL in value:
            return name
    return "path"


def nul_field(request: HttpRequest) -> str | None:
    """The name of the first input field holding a NUL character, or None."""
    if NUL in request.path_info:
        return _path_field(request.path_info)
    if request.META.get("QUERY_STRING"):
        for key, values in request.GET.lists():
            if NUL in key or any(NUL in value for value in values):
                return _printable(key)
    for name, value in request.META.items():
        if name.startswith("HTTP_") and isinstance(value, str) and NUL in value:
            return name[5:].replace("_", "-").title()
    if request.method in ("POST", "PUT", "PATCH"):
        body = request.body
        # JSON can carry a NUL only escaped; a raw NUL byte makes it malformed, which the view reports.
        if b"\\u0000" in body:
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                return None
            return nul_field_in_json(data)
    return None


class NulCharacterGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIXES):
            field = nul_field(request)
            if field is not None:
                body = error_body("validation_error", "Invalid request.", {field: [MESSAGE]})
                return HttpResponse(json.dumps(body), status=400, content_type="application/json")
        return self.get_response(request)
