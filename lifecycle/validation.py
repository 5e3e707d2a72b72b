"""Light, fast validation of state reports (contract section 2); the hot path avoids DRF serializers."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from lifecycle.models import AgentState
from opscore_project.errors import ValidationFailed
from opscore_project.lib.timeparse import parse_iso_timestamp

ACCEPTED_STATES = frozenset(AgentState.values)
MAX_AGENT_ID_LENGTH = 255


@dataclass(frozen=True)
class StateReport:
    agent_id: str
    state: str
    details: dict[str, Any]
    reported_at: datetime


def parse_json_object(content_type: str, body: bytes) -> dict[str, Any]:
    """Decode a JSON object body, or raise ValidationFailed naming what is wrong."""
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ValidationFailed(
            {"Content-Type": [f"Expected application/json, got {content_type or 'nothing'!r}."]},
            message="Unsupported content type.",
        )
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed({"body": [f"Malformed JSON: {exc}"]}, message="Malformed JSON body.") from exc
    if not isinstance(data, dict):
        raise ValidationFailed({"body": ["Expected a JSON object."]})
    return data


def validate_state_report(path_agent_id: str, data: dict[str, Any]) -> StateReport:
    errors: dict[str, list[str]] = {}
    agent_id = data.get("agentId")
    if agent_id is None:
        errors["agentId"] = ["This field is required."]
    elif not isinstance(agent_id, str) or not agent_id:
        errors["agentId"] = ["Must be a non-empty string."]
    elif agent_id != path_agent_id:
        errors["agentId"] = [f"Does not match the agent id in the path ({path_agent_id!r})."]
    elif len(agent_id) > MAX_AGENT_ID_LENGTH:
        errors["agentId"] = [f"At most {MAX_AGENT_ID_LENGTH} characters."]

    state = data.get("state")
    if state is None:
        errors["state"] = ["This field is required."]
    elif state not in ACCEPTED_STATES:
        errors["state"] = [f"Unknown state {state!r}; accepted: {', '.join(sorted(ACCEPTED_STATES))}."]

    raw_timestamp = data.get("timestamp")
    reported_at = None
    if raw_timestamp is None:
        errors["timestamp"] = ["This field is required."]
    else:
        reported_at = parse_iso_timestamp(raw_timestamp)
        if reported_at is None:
            errors["timestamp"] = ["Not an ISO-8601 timestamp with a UTC offset (e.g. 2026-11-24T09:00:00+00:00)."]
        elif reported_at.timestamp() > time.time() + settings.OPSCORE_MAX_CLOCK_SKEW_SECONDS:
            # The newest timestamp wins: a report from the future would hide every real one until then.
            errors["timestamp"] = [
                f"More than {settings.OPSCORE_MAX_CLOCK_SKEW_SECONDS}s ahead of Ops-Core's clock; check the agent's "
                "clock (OPSCORE_MAX_CLOCK_SKEW_SECONDS)."
            ]

    details = data.get("details")
    if details is None:
        details = {}
    elif not isinstance(details, dict):
        errors["details"] = ["Must be a JSON object (or null)."]

    if errors:
        raise ValidationFailed(errors)
    return StateReport(agent_id=agent_id, state=state, details=details, reported_at=reported_at)
