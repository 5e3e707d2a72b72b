"""Staff pages: the live operation log and a session's timeline (server-rendered; small vanilla JS).

The fleet pages (overview, sessions list, agent, workflow) are in ``observability.fleet.views``.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from opscore_project.errors import ValidationFailed
from opscore_project.observability import selectors
from opscore_project.observability.apis import parse_event_filters
from opscore_project.observability.models import EventLevel
from workflows import control_selectors as workflow_selectors

_FILTER_NAMES = ("agent", "session", "level", "type", "since", "until", "q")
_INITIAL_ROWS = 100
DISPATCH_PAGE_WAITING = 200  # waiting runs listed on the dispatch page (the API pages through all of them)


@staff_member_required
def events_page(request: HttpRequest) -> HttpResponse:
    """The operation log, filterable, following new events live (polling the events API with ``after=``)."""
    filter_error = None
    try:
        filters = parse_event_filters(request.GET, assume_utc=True)
    except ValidationFailed as exc:
        filter_error = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in (exc.errors or {}).items())
        filters = selectors.EventFilters()
    events = list(selectors.event_list(filters)[:_INITIAL_ROWS])
    now = timezone.now()
    window_hours = 24
    aggregates = selectors.task_aggregates(
        since=filters.since or now - timedelta(hours=window_hours), until=filters.until
    )
    context = {
        "events": events,
        "filters": {name: request.GET.get(name, "") for name in _FILTER_NAMES},
        "filter_error": filter_error,
        "levels": EventLevel.values,
        "event_types": selectors.event_types_seen(),
        "aggregates": aggregates,
        "aggregate_window": "selected range" if filters.since else f"last {window_hours} h",
        "events_api": reverse("event-list"),
        "dashboard_config": {
            "api": reverse("event-list"),
            "pollMs": settings.OPSCORE_DASHBOARD_POLL_MS,
            # Follow from the newest event of the whole log at page load, whatever the filters matched.
            "latestId": selectors.latest_event_id(),
            "agentUrl": reverse("dashboard-agent", args=["AGENT"]),
            "sessionUrl": reverse("dashboard-session", args=["SESSION"]),
            "filtered": filter_error is None,
        },
    }
    return render(request, "observability/events.html", context)


@staff_member_required
def session_detail(request: HttpRequest, session_id: str) -> HttpResponse:
    """One session's task runs on a timeline, with its events."""
    timeline = selectors.session_timeline(session_id)
    if timeline is None:
        raise Http404(f"No session {session_id!r}.")
    reasons = workflow_selectors.session_waiting_reasons(session_id=session_id)
    for task in timeline["tasks"]:
        task["waiting_reason"] = reasons.get(task["task_run_id"])
    return render(
        request,
        "observability/session.html",
        {"timeline": timeline, "session_id": session_id, "poll_ms": settings.OPSCORE_DASHBOARD_POLL_MS},
    )


@staff_member_required
def dispatch_page(request: HttpRequest) -> HttpResponse:
    """Maintenance mode, limits with their usage, and the waiting task runs with why each waits."""
    waiting = list(workflow_selectors.waiting_runs()[:DISPATCH_PAGE_WAITING])
    reasons = workflow_selectors.waiting_reasons(waiting, now=timezone.now())
    context = {
        "status": workflow_selectors.dispatch_status(),
        "waiting": [workflow_selectors.waiting_run_as_dict(run, reasons.get(run.pk, "")) for run in waiting],
        "shown": DISPATCH_PAGE_WAITING,
    }
    return render(request, "observability/dispatch.html", context)


@staff_member_required
def inbox_page(request: HttpRequest) -> HttpResponse:
    """Approval and input tasks waiting for the logged-in user: forms generated from each task's inputSchema or
    its options, answered through the API (the page polls the inbox API to stay current)."""
    return render(
        request,
        "observability/inbox.html",
        {
            "inbox_config": {
                "api": reverse("inbox"),
                "answerUrl": reverse("task-input", args=["SESSION", "TASK"]),
                "sessionUrl": reverse("dashboard-session", args=["SESSION"]),
                "pollMs": settings.OPSCORE_DASHBOARD_POLL_MS,
            }
        },
    )
