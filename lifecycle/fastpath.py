"""The state report hot path: ``POST /v1/opscore/agent/{agentId}/state`` with a Bearer key.

Every agent reports every few seconds, so this is most of Ops-Core's traffic. The middleware below answers it
without DRF's request machinery (content negotiation, renderer selection, authentication class loop) and
without the session, CSRF, auth and message middleware that follow it — none of which applies to a
Bearer-authenticated JSON POST. It runs after the request-id/logging, security and NUL-guard middleware, and does
the same authentication (failed-attempt throttle, ``agent`` scope, per-agent token binding), validation and service
call as ``AgentStateApi.post``, with the same answers. A valid key costs no cache round trip here (see
``opscore_project.authn.throttling``). A request without an ``Authorization`` header takes the normal path
(session auth for a logged-in operator, 401 otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from lifecycle import services
from lifecycle.validation import StateReport, parse_json_object, validate_state_report
from opscore_project.authn.plain import bearer_principal, json_response, scope_refusal
from opscore_project.authn.scopes import AGENT
from opscore_project.errors import ApiError, error_body
from opscore_project.observability.context import bind_log_ids

# Same segment rule as the URL pattern's <str:agent_id>: anything but a slash.
STATE_PATH = re.compile(r"^/v1/opscore/agent/(?P<agent_id>[^/]+)/state$")


def state_report_accept(*, agent_id: str, content_type: str, body: bytes) -> StateReport:
    """Parse, validate and store one state report; raises ApiError (400) naming the fields at fault."""
    report = validate_state_report(agent_id, parse_json_object(content_type, body))
    services.agent_state_report(
        agent_id=report.agent_id, state=report.state, details=report.details, reported_at=report.reported_at
    )
    return report


def accepted_body(agent_id: str) -> dict[str, str]:
    return {"status": "success", "message": "State update accepted.", "agentId": agent_id}


class StateReportFastPathMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and "HTTP_AUTHORIZATION" in request.META:
            match = STATE_PATH.match(request.path_info)
            if match is not None:
                return self.state_report(request, match["agent_id"])
        return self.get_response(request)

    @staticmethod
    def state_report(request: HttpRequest, agent_id: str) -> HttpResponse:
        bind_log_ids(agent_id=agent_id)
        principal = bearer_principal(request.META, request.META["HTTP_AUTHORIZATION"])
        if isinstance(principal, HttpResponse):
            return principal
        refusal = scope_refusal(principal, AGENT, agent_id=agent_id)
        if refusal is not None:
            return refusal
        try:
            report = state_report_accept(agent_id=agent_id, content_type=request.content_type or "", body=request.body)
        except ApiError as exc:
            return json_response(exc.status_code, error_body(exc.code, exc.message, exc.errors))
        return json_response(202, accepted_body(report.agent_id))
