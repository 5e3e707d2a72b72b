"""AgentKit's signed registration webhook (contract 1b). HMAC authentication, not Bearer."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentkit_bridge import services
from opscore_project.errors import ApiError, ValidationFailed
from opscore_project.lib.signing import signature_matches
from opscore_project.lib.timeparse import parse_unix_or_iso
from opscore_project.schema import error_responses

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-AgentKit-Timestamp"
SIGNATURE_HEADER = "X-AgentKit-Signature"
EVENT_TYPES = ("REGISTER", "DEREGISTER")
MAX_BODY_BYTES = 64 * 1024


class _Unauthorized(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="authentication_failed", status_code=401)


def _verify(request: Request) -> None:
    """Raise unless the request carries a valid signature with a fresh timestamp (contract 1b)."""
    secret = settings.OPSCORE_WEBHOOK_SECRET
    if not secret:
        raise ApiError(
            "The registration webhook is disabled: OPSCORE_WEBHOOK_SECRET is not set on Ops-Core.",
            code="unavailable",
            status_code=503,
        )
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not timestamp or not signature:
        raise _Unauthorized(f"Missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header.")
    sent_at = parse_unix_or_iso(timestamp)
    if sent_at is None:
        raise _Unauthorized(f"{TIMESTAMP_HEADER} is neither Unix seconds nor an ISO-8601 timestamp with offset.")
    # Over the raw bytes as received: re-serialised JSON would differ in spacing or key order.
    if not signature_matches(secret, timestamp, request.body, signature):
        raise _Unauthorized("Invalid webhook signature.")
    skew = abs((timezone.now() - sent_at).total_seconds())
    if skew > settings.OPSCORE_WEBHOOK_TOLERANCE_SECONDS:
        raise _Unauthorized(
            f"Webhook timestamp is {int(skew)}s away from Ops-Core's clock "
            f"(tolerance {settings.OPSCORE_WEBHOOK_TOLERANCE_SECONDS}s)."
        )


def _first_delivery(signature: str) -> bool:
    """Remember a verified signature for the replay window; False when it was seen before (a replay).

    The signature covers the timestamp and the body, so an identical one is the same delivery sent again. The
    window covers the timestamp tolerance both ways, after which the timestamp check refuses the old message.
    """
    key = f"{settings.OPSCORE_CACHE_NAMESPACE}:webhook-signature:{signature.strip().lower()}"
    try:
        return cache.add(key, 1, timeout=settings.OPSCORE_WEBHOOK_REPLAY_WINDOW_SECONDS)
    except Exception:
        logger.warning("Webhook replay store unavailable; processing without the replay check", exc_info=True)
        return True


def _optional_text(details: dict[str, Any], key: str, limit: int, errors: dict[str, list[str]]) -> str:
    value = details.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[f"agent_details.{key}"] = ["Must be a string."]
        return ""
    if len(value) > limit:
        errors[f"agent_details.{key}"] = [f"At most {limit} characters."]
    return value


def _parse(data: Any) -> tuple[str, services.Registration]:
    if not isinstance(data, dict):
        raise ValidationFailed({"body": ["Expected a JSON object."]})
    errors: dict[str, list[str]] = {}
    event_type = data.get("event_type")
    if event_type is None:
        errors["event_type"] = ["This field is required."]
    elif event_type not in EVENT_TYPES:
        errors["event_type"] = [f"Unknown event type {event_type!r}; accepted: {', '.join(EVENT_TYPES)}."]
    details = data.get("agent_details")
    if not isinstance(details, dict):
        errors["agent_details"] = ["This field is required and must be an object."]
        raise ValidationFailed(errors)
    agent_id = details.get("agentId")
    if not isinstance(agent_id, str) or not agent_id.strip():
        errors["agent_details.agentId"] = ["Required: a non-empty string."]
    elif len(agent_id) > 255:
        errors["agent_details.agentId"] = ["At most 255 characters."]
    name = _optional_text(details, "agentName", 255, errors)
    version = _optional_text(details, "version", 100, errors)
    contact_endpoint = _optional_text(details, "contactEndpoint", 2048, errors)
    capabilities = details.get("capabilities")
    if capabilities is None:
        capabilities = []
    elif not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        errors["agent_details.capabilities"] = ["Must be a list of strings."]
    metadata = details.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        errors["agent_details.metadata"] = ["Must be an object."]
    if errors:
        raise ValidationFailed(errors)
    return event_type, services.Registration(
        agent_id=agent_id,
        name=name,
        version=version,
        capabilities=list(capabilities),
        contact_endpoint=contact_endpoint,
        metadata=metadata,
    )


_AgentDetails = inline_serializer(
    "AgentKitWebhookAgentDetails",
    {
        "agentId": serializers.CharField(),
        "agentName": serializers.CharField(required=False),
        "version": serializers.CharField(required=False, allow_null=True),
        "capabilities": serializers.ListField(child=serializers.CharField(), required=False),
        "contactEndpoint": serializers.CharField(required=False, allow_null=True),
        "metadata": serializers.DictField(required=False),
    },
)


class AgentNotifyApi(APIView):
    """``POST /v1/opscore/internal/agent/notify`` — AgentKit's REGISTER/DEREGISTER webhook."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []  # the raw body is verified before it is parsed

    @extend_schema(
        operation_id="agentkit_webhook_notify",
        summary="AgentKit registration webhook (HMAC-signed)",
        description=(
            "Sent by AgentKit when an agent registers (contract 1b). Authenticated by an HMAC-SHA256 signature, "
            "not a Bearer key: `X-AgentKit-Signature` = lowercase hex HMAC-SHA256 keyed with "
            "`OPSCORE_WEBHOOK_SECRET` over `X-AgentKit-Timestamp` + `.` + the raw body. The timestamp (Unix "
            "seconds or ISO-8601) must be within `OPSCORE_WEBHOOK_TOLERANCE_SECONDS` of Ops-Core's clock. "
            "`REGISTER` creates or fills in the agent (its current state is never changed); `DEREGISTER` marks it "
            "deregistered. Idempotent. A delivery whose signature was already seen within the replay window "
            "(twice the tolerance) is a replay: answered 200 and ignored (logged)."
        ),
        auth=[],
        parameters=[
            OpenApiParameter(TIMESTAMP_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(SIGNATURE_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True),
        ],
        request=inline_serializer(
            "AgentKitWebhookRequest",
            {"event_type": serializers.ChoiceField(choices=EVENT_TYPES), "agent_details": _AgentDetails},
        ),
        responses={
            200: inline_serializer(
                "AgentKitWebhookAccepted",
                {"status": serializers.CharField(default="success"), "message": serializers.CharField()},
            ),
            **error_responses(400, 401, 415, 503),
        },
        examples=[
            OpenApiExample(
                "REGISTER",
                request_only=True,
                value={
                    "event_type": "REGISTER",
                    "agent_details": {
                        "agentId": "agent-123",
                        "agentName": "ExampleAgent",
                        "version": "1.0",
                        "capabilities": ["process_text"],
                        "contactEndpoint": "http://agent-service:8001/",
                        "metadata": {},
                    },
                },
            )
        ],
        tags=["agentkit"],
    )
    def post(self, request: Request) -> Response:
        try:
            _verify(request)
        except ApiError as exc:
            if exc.status_code == 401:
                logger.warning("Rejected AgentKit webhook from %s: %s", request.META.get("REMOTE_ADDR"), exc.message)
            raise
        content_type = (request.content_type or "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise ApiError(
                f"Expected Content-Type application/json, got {request.content_type or 'nothing'!r}.",
                code="unsupported_media_type",
                status_code=415,
            )
        if len(request.body) > MAX_BODY_BYTES:
            raise ValidationFailed({"body": [f"At most {MAX_BODY_BYTES} bytes."]})
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(f"Malformed JSON body: {exc}", code="malformed_json", status_code=400) from exc
        event_type, registration = _parse(data)
        if not _first_delivery(request.headers.get(SIGNATURE_HEADER, "")):
            logger.warning(
                "Ignored a replayed AgentKit webhook (%s for %s) from %s",
                event_type,
                registration.agent_id,
                request.META.get("REMOTE_ADDR"),
                extra={"event_type": event_type, "replay": True},
            )
            return Response(
                {"status": "success", "message": "Replay of an earlier delivery; ignored."}, status=status.HTTP_200_OK
            )
        if event_type == "REGISTER":
            outcome = services.agent_registration_receive(registration=registration)
            message = {
                "created": "Agent registered.",
                "registered": "Agent registered.",
                "updated": "Agent registration updated.",
                "unchanged": "Agent already registered; nothing changed.",
            }[outcome]
        else:
            changed = services.agent_deregistration_receive(agent_id=registration.agent_id)
            message = "Agent deregistered." if changed else "Agent unknown or already deregistered; nothing changed."
        return Response({"status": "success", "message": message}, status=status.HTTP_200_OK)
