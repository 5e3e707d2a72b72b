"""What the overview page shows: fleet counts, the charts of a window and the top-five tables."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import BooleanField, Count, Min, Q
from django.utils import timezone

from lifecycle.models import Agent
from opscore_project.observability.fleet import charts
from workflows.models import SessionStatus, TaskRun, TaskRunStatus, WorkflowSession

# Flags another part of Ops-Core may add to agents; counted only when the field exists.
AGENT_FLAGS = ("drained", "quarantined")


def _flag_filter(name: str, now: datetime, fields: dict[str, Any] | None = None) -> Q | None:
    """A filter for agents carrying ``name``: a boolean ``name``/``is_name``, a ``name_at`` timestamp (set while
    the flag holds, as ``drained_at``) or a ``name_until`` deadline (the flag holds until then, as
    ``quarantined_until``). None when the Agent model has none of these."""
    if fields is None:
        fields = {field.name: field for field in Agent._meta.get_fields()}
    if name == "quarantined" and "breaker_state" in fields:
        return ~Q(breaker_state="closed")  # open, or half-open during its trial task
    for candidate in (name, f"is_{name}"):
        if candidate in fields:
            if isinstance(fields[candidate], BooleanField):
                return Q(**{candidate: True})
            return Q(**{f"{candidate}__isnull": False})
    if f"{name}_at" in fields:
        return Q(**{f"{name}_at__isnull": False})
    if f"{name}_until" in fields:
        return Q(**{f"{name}_until__gt": now})
    return None


def agent_counts(now: datetime) -> dict[str, Any]:
    """Registered agents per current state, plus stale ones (silent past OPSCORE_AGENT_STALE_SECONDS, whatever
    their last state) and any drained/quarantined flags the Agent model has. One aggregate query."""
    cutoff = now - timedelta(seconds=settings.OPSCORE_AGENT_STALE_SECONDS)
    stale = Q(last_seen_at__lt=cutoff) | Q(last_seen_at__isnull=True, created_at__lt=cutoff)
    registered = Agent.objects.filter(deregistered_at__isnull=True)
    aggregates: dict[str, Any] = {"total": Count("id"), "stale": Count("id", filter=stale)}
    flags = {name: q for name in AGENT_FLAGS if (q := _flag_filter(name, now)) is not None}
    aggregates.update({name: Count("id", filter=q) for name, q in flags.items()})
    totals = registered.aggregate(**aggregates)
    by_state = {row["state"] or "unknown": row["n"] for row in registered.values("state").annotate(n=Count("id"))}
    states = [
        {"state": state, "count": by_state.get(state, 0)}
        for state in ("idle", "active", "error", "initializing", "finished", "unknown")
        if state in by_state or state in ("idle", "active", "error")
    ]
    return {
        "total": totals["total"],
        "states": states,
        "stale": totals["stale"],
        "flags": [{"name": name, "count": totals[name]} for name in flags],
        "deregistered": Agent.objects.filter(deregistered_at__isnull=False).count(),
    }


def session_counts(now: datetime) -> dict[str, Any]:
    """Sessions running, waiting to start and waiting for a person now, failed in the last hour; task runs waiting
    for an agent."""
    hour_ago = now - timedelta(hours=1)
    # Only the rows counted: active ones (session_status_created_idx) and those ended in the last hour
    # (session_ended_idx), not the whole history.
    sessions = WorkflowSession.objects.filter(
        Q(status__in=[SessionStatus.RUNNING, SessionStatus.PENDING, SessionStatus.WAITING_FOR_INPUT])
        | Q(ended_at__gte=hour_ago)
    ).aggregate(
        running=Count("id", filter=Q(status=SessionStatus.RUNNING)),
        waiting=Count("id", filter=Q(status=SessionStatus.PENDING)),
        waiting_for_input=Count("id", filter=Q(status=SessionStatus.WAITING_FOR_INPUT)),
        failed_last_hour=Count("id", filter=Q(status=SessionStatus.FAILED, ended_at__gte=hour_ago)),
    )
    # Served by the partial index task_run_pending_idx (status = 'pending').
    waiting_runs = TaskRun.objects.filter(status=TaskRunStatus.PENDING, ready_at__lte=now).aggregate(
        n=Count("id"), oldest=Min("ready_at")
    )
    oldest = waiting_runs["oldest"]
    by_capability = (
        TaskRun.objects.filter(status=TaskRunStatus.PENDING, ready_at__lte=now)
        .values("capability")
        .annotate(n=Count("id"), oldest=Min("ready_at"))
        .order_by("-n", "capability")[:10]
    )
    return {
        **sessions,
        "tasks_waiting": waiting_runs["n"],
        "oldest_wait_s": round((now - oldest).total_seconds()) if oldest else None,
        # Where work waits: the capabilities no free agent has taken yet.
        "waiting_by_capability": [
            {
                "capability": row["capability"],
                "count": row["n"],
                "oldest_wait_s": round((now - row["oldest"]).total_seconds()),
            }
            for row in by_capability
        ],
        "hour_ago": hour_ago,
    }


def _per_minute(values: list[float], step_minutes: float) -> list[float]:
    return [round(value / step_minutes, 3) for value in values]


def _round(values: list[float | None]) -> list[float | None]:
    return [None if value is None else round(float(value), 1) for value in values]


def overview_charts(window: charts.Window, now: datetime) -> dict[str, Any]:
    """The chart series of ``window``: x in epoch seconds (bucket starts), rates per minute, latencies in ms."""
    x = [int(moment.timestamp()) for moment in charts.bucket_starts(window, now)]
    sessions = charts.sessions_per_bucket(window, now)
    tasks = charts.tasks_completed_per_bucket(window, now)
    latency = charts.latency_per_bucket(window, now)
    per_minute = window.step_minutes
    return {
        "window": window.key,
        "stepSeconds": int(window.step.total_seconds()),
        "sessions": {
            "x": x,
            "started": _per_minute(charts.fill(window, now, sessions["started"]), per_minute),
            "completed": _per_minute(charts.fill(window, now, sessions["completed"]), per_minute),
            "failed": _per_minute(charts.fill(window, now, sessions["failed"]), per_minute),
        },
        "tasks": {"x": x, "completed": _per_minute(charts.fill(window, now, tasks), per_minute)},
        "latency": {
            "x": x,
            "queue_p50": _round(charts.fill(window, now, latency["queue_p50"], None)),
            "queue_p95": _round(charts.fill(window, now, latency["queue_p95"], None)),
            "dispatch_p95": _round(charts.fill(window, now, latency["dispatch_p95"], None)),
        },
    }


def _with_agent_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = dict(Agent.objects.filter(pk__in=[row["key"] for row in rows]).values_list("pk", "agent_id"))
    return [{**row, "key": names.get(row["key"], str(row["key"]))} for row in rows]


def overview_tables(window: charts.Window, now: datetime) -> dict[str, list[dict[str, Any]]]:
    workflows = charts.workflow_table(window, now)
    agents = charts.agent_table(window, now)
    return {
        "slowest_workflows": charts.slowest(workflows),
        "failing_workflows": charts.most_failing(workflows),
        "slowest_agents": _with_agent_ids(charts.slowest(agents)),
        "failing_agents": _with_agent_ids(charts.most_failing(agents)),
    }


def overview(*, window_key: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Everything on the overview page (charts and tables need Postgres; None on SQLite)."""
    now = now or timezone.now()
    window = charts.window_get(window_key)
    result: dict[str, Any] = {
        "now": now,
        "window": window,
        "agents": agent_counts(now),
        "sessions": session_counts(now),
        "charts": None,
        "tables": None,
    }
    if settings.IS_POSTGRES:
        result["charts"] = overview_charts(window, now)
        result["tables"] = overview_tables(window, now)
    return result
