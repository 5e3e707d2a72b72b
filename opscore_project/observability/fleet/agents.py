"""The agent page: its state history as a strip of periods, its task runs' figures and recent failures."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from lifecycle.models import Agent, AgentStateRecord
from opscore_project.observability.fleet import charts
from workflows.models import TaskRun, TaskRunStatus

STATE_TABLE = AgentStateRecord._meta.db_table

# Only the reports that change something for the strip: a new state, or the first report after a silence long
# enough to count as stale. Reads the agent's range of state_record_unique_report (agent, reported_at, state);
# a busy agent's thousands of identical reports collapse into a few rows inside Postgres.
STATE_CHANGES_SQL = f"""
SELECT reported_at, state, prev_at
  FROM (SELECT reported_at, state,
               lag(state) OVER w AS prev_state,
               lag(reported_at) OVER w AS prev_at
          FROM {STATE_TABLE}
         WHERE agent_id = %(agent)s AND reported_at < %(until)s
           AND reported_at >= (SELECT COALESCE(max(reported_at), %(since)s) FROM {STATE_TABLE}
                                WHERE agent_id = %(agent)s AND reported_at < %(since)s)
        WINDOW w AS (ORDER BY reported_at, id)) AS reports
 WHERE prev_state IS DISTINCT FROM state OR reported_at - prev_at > %(stale)s
 ORDER BY reported_at
"""


def _state_changes(agent: Agent, since: datetime, until: datetime, stale: timedelta) -> list[tuple]:
    params = {"agent": agent.pk, "since": since, "until": until, "stale": stale}
    if settings.IS_POSTGRES:
        return charts.fetch_rows(STATE_CHANGES_SQL, params)
    # Embedded SQLite: the same filter in Python (small fleets).
    before = AgentStateRecord.objects.filter(agent=agent, reported_at__lt=since).order_by("-reported_at", "-id").first()
    records = AgentStateRecord.objects.filter(agent=agent, reported_at__gte=since, reported_at__lt=until)
    rows, prev = [], None
    for record in ([before] if before else []) + list(records.order_by("reported_at", "id")):
        if prev is None or prev.state != record.state or record.reported_at - prev.reported_at > stale:
            rows.append((record.reported_at, record.state, prev.reported_at if prev else None))
        prev = record
    return rows


def state_periods(agent: Agent, *, since: datetime, until: datetime, now: datetime) -> list[dict[str, Any]]:
    """The agent's states over [since, until) as contiguous periods, stale where it was silent too long.

    A period runs from a report to the next change; after ``OPSCORE_AGENT_STALE_SECONDS`` without a report the
    rest of the silence is "stale". Before the first known report the period is "unknown". Each period has
    ``start``, ``end``, ``state`` and its ``left_pct``/``width_pct`` on the strip.
    """
    stale = timedelta(seconds=settings.OPSCORE_AGENT_STALE_SECONDS)
    end_of_view = min(until, now)
    raw: list[tuple[datetime, str]] = []  # (start, state), in order
    changes = _state_changes(agent, since, until, stale)
    for index, (reported_at, state, prev_at) in enumerate(changes):
        if index and prev_at is not None and reported_at - prev_at > stale:
            raw.append((prev_at + stale, "stale"))
        raw.append((reported_at, state))
    last_report = (
        AgentStateRecord.objects.filter(agent=agent, reported_at__lt=until)
        .order_by("-reported_at")
        .values_list("reported_at", flat=True)
        .first()
    )
    if raw and last_report is not None and end_of_view - last_report > stale:
        raw.append((last_report + stale, "stale"))
    periods: list[dict[str, Any]] = []
    if not raw or raw[0][0] > since:
        periods.append({"state": "unknown", "start": since})
    for start, state in raw:
        start = max(start, since)
        if periods and periods[-1]["state"] == state:
            continue
        if periods and periods[-1]["start"] >= start:
            periods[-1]["state"] = state  # a later report at the same (clipped) start overrides
            continue
        periods.append({"state": state, "start": start})
    span = (end_of_view - since).total_seconds() or 1
    for index, period in enumerate(periods):
        period["end"] = periods[index + 1]["start"] if index + 1 < len(periods) else end_of_view
        period["seconds"] = round((period["end"] - period["start"]).total_seconds(), 3)
        period["left_pct"] = round((period["start"] - since).total_seconds() / span * 100, 3)
        period["width_pct"] = round(period["seconds"] / span * 100, 3)
    return [period for period in periods if period["seconds"] > 0]


AGENT_RUNS_SQL = f"""
SELECT count(*),
       count(*) FILTER (WHERE status = 'completed'),
       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY run_ms)
  FROM (SELECT status,
               date_part('epoch', ended_at - COALESCE(started_at, accepted_at, dispatched_at)) * 1000 AS run_ms
          FROM {charts.TASK_RUN_TABLE}
         WHERE agent_id = %(agent)s AND ended_at >= %(since)s AND ended_at < %(until)s
           AND status IN ('completed', 'failed', 'timed_out')) AS runs
"""


def run_stats(agent: Agent, *, since: datetime, until: datetime) -> dict[str, Any]:
    """Task runs that ended on the agent in the range: count, success rate, p50/p95 run time (ms)."""
    if settings.IS_POSTGRES:
        [(runs, completed, percentiles)] = charts.fetch_rows(
            AGENT_RUNS_SQL, {"agent": agent.pk, "since": since, "until": until}
        )
        p50, p95 = percentiles or (None, None)
    else:
        ended = TaskRun.objects.filter(
            agent=agent,
            ended_at__gte=since,
            ended_at__lt=until,
            status__in=[TaskRunStatus.COMPLETED, TaskRunStatus.FAILED, TaskRunStatus.TIMED_OUT],
        )
        runs, completed, p50, p95 = ended.count(), ended.filter(status=TaskRunStatus.COMPLETED).count(), None, None
    return {
        "runs": runs,
        "completed": completed,
        "failed": runs - completed,
        "success_rate": completed / runs if runs else None,
        "p50_ms": p50,
        "p95_ms": p95,
    }


def recent_failures(agent: Agent, *, limit: int = 10) -> list[TaskRun]:
    return list(
        TaskRun.objects.filter(agent=agent, status__in=[TaskRunStatus.FAILED, TaskRunStatus.TIMED_OUT])
        .exclude(ended_at__isnull=True)
        .select_related("session")
        .order_by("-ended_at")[:limit]
    )


def agent_page(*, agent_id: str, window_key: str | None = None, now: datetime | None = None) -> dict | None:
    """Everything on the agent page, or None for an unknown agent."""
    agent = Agent.objects.filter(agent_id=agent_id).first()
    if agent is None:
        return None
    now = now or timezone.now()
    window = charts.window_get(window_key or "24h")
    since, until = now - window.span, now
    return {
        "agent": agent,
        "window": window,
        "since": since,
        "until": until,
        "stale": agent.is_stale(now),
        "periods": state_periods(agent, since=since, until=until, now=now),
        "runs": run_stats(agent, since=since, until=until),
        "failures": recent_failures(agent),
        "in_flight": TaskRun.objects.filter(
            agent=agent, status__in=[TaskRunStatus.DISPATCHED, TaskRunStatus.RUNNING]
        ).count(),
    }
