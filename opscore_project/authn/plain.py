"""Bearer checks for the views that bypass DRF (the state report fast path, ``/metrics``), with DRF's answers:
401 (no or bad key, with the challenge), 403 naming the missing scope, 429 with ``Retry-After`` when the client
address is blocked after failed attempts."""

from __future__ import annotations

import json

from django.http import HttpResponse

from opscore_project.authn import throttling
from opscore_project.authn.authentication import (
    AGENT_MISMATCH_MESSAGE,
    INVALID_KEY_MESSAGE,
    WRONG_SCHEME_MESSAGE,
    ApiPrincipal,
    authenticate_bearer_key,
    bearer_key_from_header,
    missing_scope_message,
)
from opscore_project.errors import WWW_AUTHENTICATE, error_body


def json_response(status: int, body: dict) -> HttpResponse:
    return HttpResponse(json.dumps(body, separators=(",", ":")), status=status, content_type="application/json")


def unauthorized(message: str) -> HttpResponse:
    response = json_response(401, error_body("authentication_failed", message))
    response["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


def forbidden(message: str) -> HttpResponse:
    return json_response(403, error_body("permission_denied", message))


def throttled(wait: int) -> HttpResponse:
    response = json_response(429, error_body("rate_limited", throttling.BLOCKED_MESSAGE))
    response["Retry-After"] = str(wait)
    return response


def bearer_principal(meta, header: str) -> ApiPrincipal | HttpResponse:
    """Authenticate the ``Authorization`` header: the principal, or the error answer to send."""
    address = throttling.client_address(meta)
    wait = throttling.blocked_wait(address)
    if wait is not None:
        return throttled(wait)
    key = bearer_key_from_header(header)
    principal = authenticate_bearer_key(key) if key is not None else None
    if principal is None:
        wait = throttling.record_failed_auth(address)
        if wait is not None:
            return throttled(wait)
        return unauthorized(WRONG_SCHEME_MESSAGE if key is None else INVALID_KEY_MESSAGE)
    return principal


def scope_refusal(principal, scope: str, *, agent_id: str | None = None) -> HttpResponse | None:
    """The 403 to send when ``principal`` lacks ``scope`` (or is bound to another agent), else None."""
    if scope not in principal.scopes:
        return forbidden(missing_scope_message(scope))
    if agent_id is not None and not principal.may_act_for(agent_id):
        return forbidden(AGENT_MISMATCH_MESSAGE)
    return None
