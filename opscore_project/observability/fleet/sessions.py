"""The sessions list: filters, sorting and bulk cancel/retry (through the engine's services, one by one)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.db.models import DurationField, ExpressionWrapper, F, QuerySet
from django.db.models.functions import Coalesce, Now

from opscore_project.errors import ApiError
from opscore_project.lib.timeparse import parse_iso_timestamp
from workflows import services as workflow_services
from workflows.models import SessionStatus, WorkflowSession
from workflows.selectors import session_list

SORTS = {
    "-created": ("Newest first", ["-created_at"]),
    "created": ("Oldest first", ["created_at"]),
    "-duration": ("Longest first", ["-duration", "-created_at"]),
    "duration": ("Shortest first", ["duration", "-created_at"]),
    "workflow": ("Workflow", ["workflow_id", "-created_at"]),
    "status": ("Status", ["status", "-created_at"]),
}
TIME_FIELDS = {"created": "created_at", "ended": "ended_at"}
PAGE_SIZE = 50


class UtcDateTimeField(forms.CharField):
    """An ISO-8601 moment; without an offset it is read as UTC (as the operation log's filters)."""

    def to_python(self, value: Any):
        text = (super().to_python(value) or "").strip().replace(" ", "+")
        if not text:
            return None
        moment = parse_iso_timestamp(text) or parse_iso_timestamp(text + "+00:00")
        if moment is None:
            raise forms.ValidationError("Not an ISO-8601 timestamp (e.g. 2026-01-01T10:00Z).")
        return moment


class SessionFilterForm(forms.Form):
    workflow = forms.CharField(required=False, max_length=100)
    status = forms.ChoiceField(required=False, choices=[("", "any"), *SessionStatus.choices])
    agent = forms.CharField(required=False, max_length=255)
    time = forms.ChoiceField(required=False, choices=[("created", "Created"), ("ended", "Ended")], label="Time of")
    since = UtcDateTimeField(required=False)
    until = UtcDateTimeField(required=False)
    sort = forms.ChoiceField(required=False, choices=[(key, label) for key, (label, _) in SORTS.items()])


def session_page_queryset(data: dict[str, Any]) -> QuerySet[WorkflowSession]:
    """Sessions matching a valid ``SessionFilterForm``'s ``cleaned_data``, sorted."""
    time_field = TIME_FIELDS[data.get("time") or "created"]
    queryset = session_list(
        status=data.get("status") or None,
        workflow=(data.get("workflow") or "").strip() or None,
        agent=(data.get("agent") or "").strip() or None,
    )
    if data.get("since"):
        queryset = queryset.filter(**{f"{time_field}__gte": data["since"]})
    if data.get("until"):
        queryset = queryset.filter(**{f"{time_field}__lt": data["until"]})
    sort = data.get("sort") or "-created"
    if "duration" in sort:
        # A running session's duration is "so far".
        queryset = queryset.annotate(
            duration=ExpressionWrapper(Coalesce("ended_at", Now()) - F("created_at"), output_field=DurationField())
        )
    return queryset.order_by(*SORTS[sort][1])


@dataclass
class BulkResult:
    done: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


BULK_ACTIONS = {"cancel": "Cancel", "retry": "Retry"}


def sessions_bulk_apply(*, action: str, session_ids: list[str]) -> BulkResult:
    """Cancel or retry each session through the engine's service; a session the service refuses (already
    ended, not failed, unknown) is reported with the reason and does not stop the others."""
    service = {"cancel": workflow_services.session_cancel, "retry": workflow_services.session_retry}[action]
    result = BulkResult()
    for session_id in dict.fromkeys(session_ids):
        try:
            uuid.UUID(session_id)
        except ValueError:
            result.refused[session_id] = "Not a session id."
            continue
        try:
            service(session_id=session_id)
        except ApiError as exc:
            result.refused[session_id] = str(exc.detail)
        else:
            result.done.append(session_id)
    return result
