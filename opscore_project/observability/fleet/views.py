"""Staff pages of the fleet overview: overview, sessions list, agent page, workflow page (server-rendered)."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from opscore_project.errors import json_error
from opscore_project.observability.fleet import agents, charts, overview, sessions, workflows

# Query parameters of the operation log: a link to /dashboard/ carrying one is an old operation-log link.
EVENT_FILTER_NAMES = ("agent", "session", "level", "type", "since", "until", "q")


def _window_param(request: HttpRequest) -> str | None:
    key = request.GET.get("window")
    return key if key in charts.WINDOWS else None


@staff_member_required
def overview_page(request: HttpRequest) -> HttpResponse:
    """The fleet at a glance. Old operation-log links (``/dashboard/?level=error``) go to the events page."""
    if any(name in request.GET for name in EVENT_FILTER_NAMES):
        return redirect(f"{reverse('dashboard-events')}?{request.GET.urlencode()}", permanent=True)
    data = overview.overview(window_key=_window_param(request))
    return render(
        request,
        "observability/overview.html",
        {
            **data,
            "windows": charts.WINDOWS.values(),
            "config": {
                "dataUrl": reverse("dashboard-overview-data"),
                "window": data["window"].key,
                "pollMs": settings.OPSCORE_DASHBOARD_POLL_MS * 5,
                "charts": data["charts"],
            },
        },
    )


@staff_member_required
def overview_data(request: HttpRequest) -> JsonResponse:
    """The overview's counts and chart series as JSON (the page refreshes itself from it)."""
    key = request.GET.get("window")
    if key and key not in charts.WINDOWS:
        errors = {"window": [f"One of {', '.join(charts.WINDOWS)}."]}
        return json_error("validation_error", "Invalid request.", 400, errors)
    data = overview.overview(window_key=key)
    counts = {
        "agents": {
            **{row["state"]: row["count"] for row in data["agents"]["states"]},
            "stale": data["agents"]["stale"],
            "total": data["agents"]["total"],
            **{row["name"]: row["count"] for row in data["agents"]["flags"]},
        },
        "sessions": {
            name: data["sessions"][name]
            for name in ("running", "waiting", "failed_last_hour", "tasks_waiting", "oldest_wait_s")
        },
    }
    return JsonResponse({"counts": counts, "charts": data["charts"]})


@staff_member_required
@require_http_methods(["GET", "POST"])
def sessions_page(request: HttpRequest) -> HttpResponse:
    """Sessions, filtered and sorted, 50 a page; POST applies a bulk cancel/retry after a confirmation step."""
    if request.method == "POST":
        return _sessions_bulk(request)
    form = sessions.SessionFilterForm(request.GET)
    if form.is_valid():
        queryset = sessions.session_page_queryset(form.cleaned_data)
    else:
        queryset = sessions.session_page_queryset({})
    page = Paginator(queryset, sessions.PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "observability/sessions.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "actions": sessions.BULK_ACTIONS,
            "filter_error": form.errors if not form.is_valid() else None,
        },
    )


def _sessions_bulk(request: HttpRequest) -> HttpResponse:
    action = request.POST.get("action", "")
    ids = [value for value in request.POST.getlist("session") if value]
    back = request.POST.get("next") or reverse("dashboard-sessions")
    if not back.startswith("/"):
        back = reverse("dashboard-sessions")
    if action not in sessions.BULK_ACTIONS or not ids:
        messages.error(request, "Choose an action and at least one session.")
        return redirect(back)
    if request.POST.get("confirm") != "yes":
        chosen = sessions.session_page_queryset({}).filter(pk__in=[i for i in ids if _is_uuid(i)])
        return render(
            request,
            "observability/sessions_confirm.html",
            {"action": action, "verb": sessions.BULK_ACTIONS[action], "sessions": chosen, "next": back},
        )
    result = sessions.sessions_bulk_apply(action=action, session_ids=ids)
    verb = "cancelled" if action == "cancel" else "retried"
    if result.done:
        messages.success(request, f"{len(result.done)} session(s) {verb}.")
    for session_id, reason in result.refused.items():
        messages.warning(request, f"{session_id}: {reason}")
    return redirect(back)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@staff_member_required
def agent_page(request: HttpRequest, agent_id: str) -> HttpResponse:
    data = agents.agent_page(agent_id=agent_id, window_key=_window_param(request))
    if data is None:
        # Events can name agents Ops-Core does not hold (removed since): say so and still link their events.
        events_url = f"{reverse('dashboard-events')}?{urlencode({'agent': agent_id})}"
        context = {"agent_id": agent_id, "events_url": events_url}
        return render(request, "observability/agent_unknown.html", context, status=404)
    return render(
        request,
        "observability/agent.html",
        {
            **data,
            "windows": charts.WINDOWS.values(),
            "events_url": f"{reverse('dashboard-events')}?{urlencode({'agent': agent_id})}",
            "sessions_url": f"{reverse('dashboard-sessions')}?{urlencode({'agent': agent_id})}",
            "admin_url": reverse("admin:lifecycle_agent_change", args=[data["agent"].pk]),
            "poll_ms": settings.OPSCORE_DASHBOARD_POLL_MS,
        },
    )


@staff_member_required
def workflow_page(request: HttpRequest, workflow_id: str) -> HttpResponse:
    data = workflows.workflow_page(
        workflow_id=workflow_id,
        version=request.GET.get("version"),
        session_id=request.GET.get("session"),
        window_key=_window_param(request),
    )
    if data is None:
        raise Http404(f"No workflow {workflow_id!r}.")
    return render(
        request,
        "observability/workflow.html",
        {
            **data,
            "windows": charts.WINDOWS.values(),
            "sessions_url": f"{reverse('dashboard-sessions')}?{urlencode({'workflow': workflow_id})}",
            "version_query": "&"
            + urlencode(
                {"session": data["session"].pk} if data["session"] else {"version": data["definition"].version}
            ),
            "poll_ms": settings.OPSCORE_DASHBOARD_POLL_MS,
        },
    )
