"""Reads of the operation log shared by the events API, the dashboard and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from opscore_project.observability import events
from opscore_project.observability.models import OperationEvent


@dataclass(frozen=True)
class EventFilters:
    agent: str | None = None
    session: str | None = None
    level: str | None = None  # one level or a comma list
    type: str | None = None  # exact type, a comma list, or a prefix ending in "*" / "." ("task.*")
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    after: int | None = None


def event_list(filters: EventFilters) -> QuerySet[OperationEvent]:
    """Events matching ``filters``: newest first, or with ``after`` the ones newer than that id, oldest first."""
    queryset = OperationEvent.objects.all()
    if filters.agent:
        queryset = queryset.filter(agent_id=filters.agent)
    if filters.session:
        queryset = queryset.filter(session_id=filters.session)
    if filters.level:
        levels = [value.strip() for value in filters.level.split(",") if value.strip()]
        queryset = queryset.filter(level__in=levels)
    if filters.type:
        type_query = Q()
        for value in (v.strip() for v in filters.type.split(",") if v.strip()):
            if value.endswith(("*", ".")):
                type_query |= Q(event_type__startswith=value.rstrip("*"))
            else:
                type_query |= Q(event_type=value)
        queryset = queryset.filter(type_query)
    if filters.since:
        queryset = queryset.filter(created_at__gte=filters.since)
    if filters.until:
        queryset = queryset.filter(created_at__lt=filters.until)
    if filters.q:
        text = filters.q.strip()
        queryset = queryset.filter(
            Q(message__icontains=text)
            | Q(event_type__icontains=text)
            | Q(agent_id__icontains=text)
            | Q(session_id__icontains=text)
            | Q(task_id__icontains=text)
            | Q(request_id=text)
        )
    if filters.after is not None:
        return queryset.filter(id__gt=filters.after).order_by("id")
    return queryset.order_by("-created_at", "-id")


def latest_event_id() -> int:
    return OperationEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def event_types_seen() -> list[str]:
    """Known type names plus any other recorded in the last day (for the dashboard's type filter)."""
    recent = OperationEvent.objects.filter(created_at__gte=timezone.now() - timedelta(days=1))
    seen = set(recent.values_list("event_type", flat=True).distinct()[:200])
    return sorted(seen | set(events.ALL_EVENT_TYPES))


# --- aggregates ------------------------------------------------------------------------------------------------

_TASK_END_TYPES = (events.TASK_COMPLETED, events.TASK_FAILED, events.TASK_TIMED_OUT)
_FAILED_TYPES = (events.TASK_FAILED, events.TASK_TIMED_OUT)


def ctx(context: Any, key: str, default: Any = None) -> Any:
    """``context[key]`` accepting both snake_case and camelCase keys (the bridge writes camelCase)."""
    if not isinstance(context, dict):
        return default
    if key in context:
        return context[key]
    head, *rest = key.split("_")
    return context.get(head + "".join(part.title() for part in rest), default)


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    # Linear interpolation, as Postgres' percentile_cont.
    position = (len(sorted_values) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _aggregate_rows(rows: list[tuple[str, float | None, bool]]) -> list[dict[str, Any]]:
    groups: dict[str, tuple[list[float], int, int]] = {}
    for key, duration_ms, failed in rows:
        durations, count, failures = groups.get(key or "—", ([], 0, 0))
        if duration_ms is not None:
            durations.append(float(duration_ms))
        groups[key or "—"] = (durations, count + 1, failures + (1 if failed else 0))
    result = []
    for key, (durations, count, failures) in groups.items():
        durations.sort()
        result.append(
            {
                "key": key,
                "count": count,
                "p50_ms": _percentile(durations, 0.5),
                "p95_ms": _percentile(durations, 0.95),
                "failure_rate": failures / count if count else 0.0,
                "failures": failures,
            }
        )
    return sorted(result, key=lambda row: (-row["count"], row["key"]))


def _task_run_model():
    from django.apps import apps

    try:
        return apps.get_model("workflows", "TaskRun")
    except LookupError:
        return None


def task_aggregates(*, since: datetime, until: datetime | None = None, limit: int = 20000) -> dict[str, Any]:
    """Finished task runs per workflow and per agent: count, p50/p95 run time (ms) and failure rate.

    Reads the workflow engine's task runs when it is installed, otherwise the task-ending events
    (``task.completed``/``failed``/``timed_out`` with ``duration_ms`` and ``workflow_id`` in their context).
    """
    rows_by_workflow: list[tuple[str, float | None, bool]] = []
    rows_by_agent: list[tuple[str, float | None, bool]] = []
    task_run = _task_run_model()
    source = "task_runs" if task_run is not None and hasattr(task_run, "ended_at") else "events"
    if source == "task_runs":
        rows_by_workflow, rows_by_agent = _task_run_rows(task_run, since, until, limit)
    else:
        queryset = OperationEvent.objects.filter(event_type__in=_TASK_END_TYPES, created_at__gte=since)
        if until:
            queryset = queryset.filter(created_at__lt=until)
        for event_type, agent_id, context in queryset.values_list("event_type", "agent_id", "context")[:limit]:
            duration = ctx(context, "duration_ms")
            duration = float(duration) if isinstance(duration, (int, float)) else None
            failed = event_type in _FAILED_TYPES
            rows_by_workflow.append((str(ctx(context, "workflow_id") or ""), duration, failed))
            rows_by_agent.append((agent_id, duration, failed))
    return {
        "source": source,
        "by_workflow": _aggregate_rows(rows_by_workflow),
        "by_agent": _aggregate_rows(rows_by_agent),
    }


def _task_run_rows(task_run, since: datetime, until: datetime | None, limit: int):
    """Rows from the engine's TaskRun model: run time = ended_at - (started_at or accepted_at or dispatched_at)."""
    failed_statuses = {"failed", "timed_out"}
    queryset = task_run.objects.filter(
        ended_at__isnull=False, ended_at__gte=since, status__in=["completed", "failed", "timed_out"]
    )
    if until:
        queryset = queryset.filter(ended_at__lt=until)
    values = queryset.values_list(
        "status", "started_at", "accepted_at", "dispatched_at", "ended_at", "session__workflow_id", "agent__agent_id"
    )
    by_workflow, by_agent = [], []
    for status, started, accepted, dispatched, ended, workflow_id, agent_id in values[:limit]:
        begin = started or accepted or dispatched
        duration = (ended - begin).total_seconds() * 1000 if begin else None
        failed = status in failed_statuses
        by_workflow.append((str(workflow_id or ""), duration, failed))
        by_agent.append((str(agent_id or ""), duration, failed))
    return by_workflow, by_agent


# --- session timeline ------------------------------------------------------------------------------------------


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 1)


def _assign_lanes(tasks: list[dict[str, Any]]) -> int:
    """Put overlapping bars on separate rows (parallel branches), greedily, in start order."""
    lane_ends: list[datetime] = []
    for task in sorted(tasks, key=lambda t: (t["bar_start"], t["task_id"])):
        for index, end in enumerate(lane_ends):
            if end <= task["bar_start"]:
                task["lane"] = index
                lane_ends[index] = task["bar_end"]
                break
        else:
            task["lane"] = len(lane_ends)
            lane_ends.append(task["bar_end"])
    return len(lane_ends)


def session_timeline(session_id: str, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The timeline of one session, or None if nothing is known about it.

    Shape (what ``session.html`` renders)::

        {"session_id", "source": "task_runs"|"events", "session": {"workflow_id", "status", "agent_id",
         "started_at", "ended_at", "error"}, "start", "end", "span_ms", "lanes",
         "tasks": [{"task_run_id", "task_id", "attempt", "status", "agent_id", "error", "lane",
                    "created_at", "ready_at", "dispatched_at", "started_at", "ended_at",
                    "queue_wait_ms", "dispatch_latency_ms", "run_ms", "total_ms",
                    "wait_left_pct", "wait_width_pct", "run_left_pct", "run_width_pct"}],
         "events": [OperationEvent…]}

    A bar's pale part is the wait (created → started), its solid part the run (started → ended, or now).
    """
    now = now or timezone.now()
    session_events = list(OperationEvent.objects.filter(session_id=session_id).order_by("created_at", "id")[:2000])
    timeline = _timeline_from_task_runs(session_id)
    if timeline is None:
        if not session_events:
            return None
        timeline = _timeline_from_events(session_id, session_events)
    timeline["events"] = session_events
    tasks = timeline["tasks"]
    for task in tasks:
        task["queue_wait_ms"] = _ms(task.get("ready_at") or task["created_at"], task.get("dispatched_at"))
        task["dispatch_latency_ms"] = _ms(task.get("dispatched_at"), task.get("started_at"))
        task["run_ms"] = _ms(task.get("started_at"), task.get("ended_at"))
        task["total_ms"] = _ms(task["created_at"], task.get("ended_at"))
        task["bar_start"] = task["created_at"]
        task["bar_end"] = task.get("ended_at") or now
    starts = [t["bar_start"] for t in tasks] + [timeline["session"].get("started_at") or now]
    ends = [t["bar_end"] for t in tasks] + [timeline["session"].get("ended_at") or max(starts)]
    start, end = min(starts), max(ends)
    span = max((end - start).total_seconds(), 0.001)

    def pct(moment: datetime | None) -> float:
        return round(((moment or end) - start).total_seconds() / span * 100, 3)

    for task in tasks:
        run_start = task.get("started_at") or task["bar_end"]
        task["wait_left_pct"] = pct(task["bar_start"])
        task["wait_width_pct"] = max(pct(run_start) - pct(task["bar_start"]), 0)
        task["run_left_pct"] = pct(run_start)
        task["run_width_pct"] = max(pct(task["bar_end"]) - pct(run_start), 0.4 if task.get("started_at") else 0)
    timeline["lanes"] = _assign_lanes(tasks)
    tasks.sort(key=lambda t: (t["lane"], t["bar_start"]))
    timeline.update(start=start, end=end, span_ms=round(span * 1000, 1))
    timeline["ticks"] = [
        {"left_pct": i * 25, "label": f"{span * i / 4:.2f}s" if span < 120 else f"{span * i / 240:.1f}m"}
        for i in range(5)
    ]
    return timeline


def _timeline_from_events(session_id: str, session_events: list[OperationEvent]) -> dict[str, Any]:
    """Reconstruct task runs from the operation log (``task.*`` events keyed by ``task_id``)."""
    session: dict[str, Any] = {
        "workflow_id": "",
        "status": "running",
        "agent_id": "",
        "error": "",
        "started_at": None,
        "ended_at": None,
    }
    tasks: dict[str, dict[str, Any]] = {}
    ending_status = {
        events.TASK_COMPLETED: "completed",
        events.TASK_FAILED: "failed",
        events.TASK_TIMED_OUT: "timed_out",
        events.TASK_CANCELLED: "cancelled",
        events.TASK_SKIPPED: "skipped",
    }
    for event in session_events:
        context = event.context if isinstance(event.context, dict) else {}
        session["workflow_id"] = session["workflow_id"] or str(ctx(context, "workflow_id") or "")
        session["agent_id"] = session["agent_id"] or (event.agent_id if event.event_type.startswith("session.") else "")
        if event.event_type == events.SESSION_STARTED:
            session["started_at"] = event.created_at
        elif event.event_type in (events.SESSION_COMPLETED, events.SESSION_FAILED, events.SESSION_CANCELLED):
            session["ended_at"] = event.created_at
            session["status"] = event.event_type.split(".", 1)[1]
            session["error"] = str(context.get("error") or "")
        if not event.task_id or not event.event_type.startswith("task."):
            continue
        task = tasks.setdefault(
            event.task_id,
            {
                "task_run_id": event.task_id,
                "task_id": str(context.get("task") or ctx(context, "task_id") or event.task_id),
                "attempt": ctx(context, "attempt", 1),
                "status": "pending",
                "agent_id": event.agent_id,
                "error": "",
                "created_at": event.created_at,
                "ready_at": None,
                "dispatched_at": None,
                "started_at": None,
                "ended_at": None,
            },
        )
        task["agent_id"] = event.agent_id or task["agent_id"]
        if isinstance(context.get("attempt"), int):
            task["attempt"] = max(task["attempt"], context["attempt"])
        if event.event_type == events.TASK_DISPATCHED:
            task["dispatched_at"], task["status"] = event.created_at, "dispatched"
        elif event.event_type == events.TASK_RUNNING:
            task["started_at"], task["status"] = event.created_at, "running"
        elif event.event_type in ending_status:
            task["ended_at"], task["status"] = event.created_at, ending_status[event.event_type]
            task["error"] = str(context.get("error") or "")
            duration = ctx(context, "duration_ms")
            if task["started_at"] is None and isinstance(duration, (int, float)):
                task["started_at"] = event.created_at - timedelta(milliseconds=duration)
    return {"session_id": session_id, "source": "events", "session": session, "tasks": list(tasks.values())}


def _agent_id_of(obj: Any) -> str:
    """The AgentKit agent id of a row holding a ForeignKey ``agent`` to lifecycle.Agent (or a plain column)."""
    agent = getattr(obj, "agent", None)
    if agent is not None:
        return str(getattr(agent, "agent_id", agent) or "")
    return str(getattr(obj, "agent_id", "") or "")


def _timeline_from_task_runs(session_id: str) -> dict[str, Any] | None:
    """The timeline from the workflow engine's models (``workflows.WorkflowSession`` / ``TaskRun``)."""
    from django.apps import apps
    from django.core.exceptions import ValidationError

    try:
        session_model = apps.get_model("workflows", "WorkflowSession")
        task_run_model = apps.get_model("workflows", "TaskRun")
    except LookupError:
        return None
    try:
        session_obj = session_model.objects.select_related("agent").filter(pk=session_id).first()
    except (ValueError, TypeError, ValidationError):  # not a UUID: not an engine session
        return None
    if session_obj is None:
        return None
    session = {
        "workflow_id": str(getattr(session_obj, "workflow_id", "") or ""),
        "status": str(session_obj.status),
        "agent_id": _agent_id_of(session_obj),
        "started_at": session_obj.started_at or session_obj.created_at,
        "ended_at": session_obj.ended_at,
        "error": str(session_obj.error or ""),
    }
    tasks = []
    runs = task_run_model.objects.filter(session=session_obj).select_related("agent").order_by("created_at", "pk")
    for run in runs:
        # A human task's wait for its answer is its own bar: it "runs" from the moment it starts waiting.
        human = getattr(run, "is_human", False)
        tasks.append(
            {
                "kind": str(getattr(run, "kind", "agent")),
                "answered_by": str(getattr(run, "answered_by", "") or ""),
                "task_run_id": str(run.pk),
                "task_id": str(run.task_id),
                "attempt": run.attempt,
                "status": str(run.status),
                "agent_id": _agent_id_of(run),
                "error": str(run.error or ""),
                "created_at": run.created_at,
                "ready_at": run.ready_at,
                "dispatched_at": run.dispatched_at,
                # Running from the agent's "active" report; AgentKit's 202 when that report never came.
                "started_at": run.created_at if human else run.started_at or run.accepted_at,
                "ended_at": run.ended_at,
            }
        )
    return {"session_id": session_id, "source": "task_runs", "session": session, "tasks": tasks}


def task_duration_histogram(buckets: tuple[float, ...]) -> dict[str, dict[str, Any]] | None:
    """Per finished status: cumulative bucket counts, count and sum (seconds) of task run times, computed from
    the engine's task runs in one grouped query; None when the engine is not installed."""
    from django.db.models import Count, DurationField, ExpressionWrapper, F, Sum
    from django.db.models.functions import Coalesce

    task_run = _task_run_model()
    if task_run is None:
        return None
    duration = ExpressionWrapper(
        F("ended_at") - Coalesce("started_at", "accepted_at", "dispatched_at"), output_field=DurationField()
    )
    aggregates: dict[str, Any] = {
        f"le_{index}": Count("pk", filter=Q(run_time__lte=timedelta(seconds=le))) for index, le in enumerate(buckets)
    }
    aggregates.update(n=Count("pk", filter=Q(run_time__isnull=False)), total=Sum("run_time"))
    rows = (
        task_run.objects.filter(ended_at__isnull=False, status__in=["completed", "failed", "timed_out"])
        .annotate(run_time=duration)
        .values("status")
        .annotate(**aggregates)
        .order_by("status")
    )
    result: dict[str, dict[str, Any]] = {}
    for row in rows:
        result[row["status"]] = {
            "buckets": [row[f"le_{index}"] for index in range(len(buckets))],
            "count": row["n"],
            "sum": row["total"].total_seconds() if row["total"] else 0.0,
        }
    return result


def state_reports_last_minute(now: datetime | None = None) -> int:
    from lifecycle.models import AgentStateRecord

    now = now or timezone.now()
    return AgentStateRecord.objects.filter(received_at__gte=now - timedelta(minutes=1)).count()


def table_estimate(table: str) -> int | None:
    """Postgres' row estimate for ``table`` (cheap; exact counts of big tables are not)."""
    if not settings.IS_POSTGRES:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None
