"""The overview's time series and top-five tables: one SQL statement each, time-bucketed in Postgres.

Every statement reads a time range through an index made for it (``workflows`` migration
``0002_dashboard_chart_indexes``; EXPLAIN plans and timings in docs/performance.md, "Dashboard"):

- sessions chart: ``session_created_idx`` (started) and ``session_ended_idx`` (completed/failed);
- tasks chart and the agent tables: ``task_run_ended_idx`` (an index-only scan: it INCLUDEs what they read);
- latency chart: ``task_run_dispatched_idx``;
- workflow tables: ``session_ended_idx``.

In the windows of ``ROLLUP_WINDOWS`` (7 d) the tasks and latency charts and the agent tables read the part of the
window that can no longer change from the rollups of ``fleet/rollup.py`` and only the rest from the runs, in one
statement each, with the same figures as the live statements (``LIVE_QUERIES``).

Run times are ``date_part('epoch', interval)`` (double precision): ``extract`` returns numeric since
Postgres 14, and sorting numerics for the percentiles was most of the time. ``percentile_cont(ARRAY[…])`` sorts
once for p50 and p95. Buckets come back sparse; ``fill`` turns them into one value per bucket (zeros where
nothing happened).
Postgres only (``date_bin``, ``percentile_cont``): in the embedded SQLite mode the overview shows counts only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from opscore_project.observability.models import FleetAgentRuns, FleetChartBucket
from workflows.models import TaskRun, WorkflowSession

WORK_MEM = "64MB"
# Both for the current transaction only, in one round trip.
SETTINGS_SQL = f"SELECT set_config('work_mem', '{WORK_MEM}', true), set_config('jit', 'off', true)"
SESSION_TABLE = WorkflowSession._meta.db_table
TASK_RUN_TABLE = TaskRun._meta.db_table
BUCKET_ROLLUP_TABLE = FleetChartBucket._meta.db_table
AGENT_ROLLUP_TABLE = FleetAgentRuns._meta.db_table


@dataclass(frozen=True)
class Window:
    """A chart range: ``span`` long, cut into ``step`` buckets, ending at the bucket holding ``now``."""

    key: str
    label: str
    span: timedelta
    step: timedelta

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        step = self.step.total_seconds()
        end = datetime.fromtimestamp((now.timestamp() // step + 1) * step, tz=now.tzinfo or timezone.utc)
        return end - self.span, end

    @property
    def buckets(self) -> int:
        return int(self.span / self.step)

    @property
    def step_minutes(self) -> float:
        return self.step.total_seconds() / 60


WINDOWS = {
    "1h": Window("1h", "1 h", timedelta(hours=1), timedelta(minutes=1)),
    "24h": Window("24h", "24 h", timedelta(hours=24), timedelta(minutes=15)),
    "7d": Window("7d", "7 d", timedelta(days=7), timedelta(hours=2)),
}
DEFAULT_WINDOW = "1h"
# Windows whose tasks and latency charts and agent tables read the closed part from the rollups (fleet/rollup.py).
# The 1 h and 24 h windows read a few thousand runs at most and stay live.
ROLLUP_WINDOWS = ("7d",)


def window_get(key: str | None) -> Window:
    return WINDOWS.get(key or DEFAULT_WINDOW, WINDOWS[DEFAULT_WINDOW])


def fetch_rows(sql: str, params: dict[str, Any]) -> list[tuple]:
    """Run one chart statement. With room to sort a week of task runs in memory: at the default work_mem
    (4 MB) the per-agent percentiles of a million-run history sort on disk. Without JIT compilation: the
    planner's estimate for the 7-day latency statement crossed its threshold, and compiling took longer (5 ms)
    than it saved."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SETTINGS_SQL)
        cursor.execute(sql, params)
        return cursor.fetchall()


def _params(window: Window, now: datetime) -> dict[str, Any]:
    since, until = window.bounds(now)
    return {"since": since, "until": until, "step": window.step}


def fill(window: Window, now: datetime, sparse: dict[datetime, float | None], default: float | None = 0) -> list:
    since, _until = window.bounds(now)
    return [sparse.get(since + window.step * index, default) for index in range(window.buckets)]


def bucket_starts(window: Window, now: datetime) -> list[datetime]:
    since, _until = window.bounds(now)
    return [since + window.step * index for index in range(window.buckets)]


SESSIONS_SQL = f"""
SELECT 'started' AS kind, date_bin(%(step)s, created_at, %(since)s) AS bucket, count(*)
  FROM {SESSION_TABLE}
 WHERE created_at >= %(since)s AND created_at < %(until)s
 GROUP BY 2
UNION ALL
SELECT status, date_bin(%(step)s, ended_at, %(since)s), count(*)
  FROM {SESSION_TABLE}
 WHERE ended_at >= %(since)s AND ended_at < %(until)s AND status IN ('completed', 'failed')
 GROUP BY 1, 2
"""


def sessions_per_bucket(window: Window, now: datetime) -> dict[str, dict[datetime, int]]:
    """Sessions started (by ``created_at``), completed and failed (by ``ended_at``) per bucket."""
    result: dict[str, dict[datetime, int]] = {"started": {}, "completed": {}, "failed": {}}
    for kind, bucket, count in fetch_rows(SESSIONS_SQL, _params(window, now)):
        result[kind][bucket] = count
    return result


TASKS_SQL = f"""
SELECT date_bin(%(step)s, ended_at, %(since)s) AS bucket, count(*)
  FROM {TASK_RUN_TABLE}
 WHERE ended_at >= %(since)s AND ended_at < %(until)s AND status = 'completed'
 GROUP BY 1
"""

# One bucket's count (the rollup closes buckets with it, and counts the open ones of a rolled-up window).
TASKS_BUCKET_SQL = f"""
       SELECT count(*) AS n
         FROM {TASK_RUN_TABLE}
        WHERE ended_at >= b.bucket AND ended_at < b.bucket + %(step)s::interval AND status = 'completed'"""

# Closed buckets from their rollup (fleet/rollup.py), the others counted live.
TASKS_ROLLUP_SQL = f"""
SELECT b.bucket, CASE WHEN c.bucket IS NULL THEN p.n ELSE c.tasks_completed END
  FROM generate_series(%(since)s::timestamptz, %(until)s::timestamptz - %(step)s::interval, %(step)s::interval)
       AS b(bucket)
  LEFT JOIN {BUCKET_ROLLUP_TABLE} c ON c.step_seconds = %(step_seconds)s AND c.bucket = b.bucket
  LEFT JOIN LATERAL ({TASKS_BUCKET_SQL} AND c.bucket IS NULL) AS p ON true
 WHERE COALESCE(c.tasks_completed, p.n) > 0
"""


def _rollup_params(window: Window, now: datetime) -> dict[str, Any]:
    return {**_params(window, now), "step_seconds": int(window.step.total_seconds())}


def tasks_statement(window: Window, now: datetime) -> tuple[str, dict[str, Any]]:
    """The tasks chart's statement: with the rolled-up closed buckets for a window in ``ROLLUP_WINDOWS``."""
    if window.key in ROLLUP_WINDOWS:
        return TASKS_ROLLUP_SQL, _rollup_params(window, now)
    return TASKS_SQL, _params(window, now)


def tasks_completed_per_bucket(window: Window, now: datetime) -> dict[datetime, int]:
    return dict(fetch_rows(*tasks_statement(window, now)))


# Queue wait: ready (dependencies met, or retry due) → dispatched. Dispatch latency: dispatched → the agent's
# "active" report, or AgentKit's 202 when that report never came (as on the session timeline).
# One index range scan per bucket (LATERAL) rather than one scan sorted by bucket: the runs come out of the index
# in time order, so each bucket's percentiles sort only that bucket's rows and the week's rows are never sorted
# as a whole (which spilled to disk past work_mem at a million task runs).
LATENCY_BUCKET_SQL = f"""
       SELECT count(*) AS n,
              percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                ORDER BY GREATEST(date_part('epoch', dispatched_at - ready_at) * 1000, 0)) AS queue,
              percentile_cont(0.95) WITHIN GROUP (
                ORDER BY GREATEST(date_part('epoch', COALESCE(started_at, accepted_at) - dispatched_at) * 1000, 0)
              ) AS dispatch_p95
         FROM {TASK_RUN_TABLE}
        WHERE dispatched_at >= b.bucket AND dispatched_at < b.bucket + %(step)s::interval"""

LATENCY_SQL = f"""
SELECT b.bucket, p.queue, p.dispatch_p95
  FROM generate_series(%(since)s::timestamptz, %(until)s::timestamptz - %(step)s::interval, %(step)s::interval)
       AS b(bucket)
 CROSS JOIN LATERAL ({LATENCY_BUCKET_SQL}) AS p
 WHERE p.n > 0
"""

# The same with the closed buckets read from their rollup (fleet/rollup.py): the live statement runs only for
# the others (the gating "c.bucket IS NULL" skips the index scan of a closed bucket).
LATENCY_ROLLUP_SQL = f"""
SELECT b.bucket,
       CASE WHEN c.bucket IS NULL THEN p.queue ELSE ARRAY[c.queue_p50, c.queue_p95] END,
       CASE WHEN c.bucket IS NULL THEN p.dispatch_p95 ELSE c.dispatch_p95 END
  FROM generate_series(%(since)s::timestamptz, %(until)s::timestamptz - %(step)s::interval, %(step)s::interval)
       AS b(bucket)
  LEFT JOIN {BUCKET_ROLLUP_TABLE} c ON c.step_seconds = %(step_seconds)s AND c.bucket = b.bucket
  LEFT JOIN LATERAL ({LATENCY_BUCKET_SQL} AND c.bucket IS NULL) AS p ON true
 WHERE COALESCE(c.dispatched, p.n) > 0
"""


def latency_statement(window: Window, now: datetime) -> tuple[str, dict[str, Any]]:
    """The latency chart's statement: with the rolled-up closed buckets for a window in ``ROLLUP_WINDOWS``."""
    if window.key in ROLLUP_WINDOWS:
        return LATENCY_ROLLUP_SQL, _rollup_params(window, now)
    return LATENCY_SQL, _params(window, now)


def latency_per_bucket(window: Window, now: datetime) -> dict[str, dict[datetime, float | None]]:
    """Queue wait p50/p95 and dispatch latency p95 (ms) of the task runs dispatched in each bucket."""
    result: dict[str, dict[datetime, float | None]] = {"queue_p50": {}, "queue_p95": {}, "dispatch_p95": {}}
    for bucket, (q50, q95), d95 in fetch_rows(*latency_statement(window, now)):
        result["queue_p50"][bucket] = q50
        result["queue_p95"][bucket] = q95
        result["dispatch_p95"][bucket] = d95
    return result


# Session time: triggered → ended (waiting included: that is what the caller waits for).
WORKFLOW_TABLE_SQL = f"""
SELECT workflow_id,
       count(*) AS runs,
       count(*) FILTER (WHERE status = 'failed') AS failures,
       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY date_part('epoch', ended_at - created_at) * 1000)
  FROM {SESSION_TABLE}
 WHERE ended_at >= %(since)s AND ended_at < %(until)s AND status IN ('completed', 'failed')
 GROUP BY workflow_id
"""

# Run time: running (or accepted, or dispatched) → ended, of the task runs that ended on each agent.
AGENT_RUNS_IN_RANGE_SQL = f"""
SELECT agent_id, status,
       date_part('epoch', ended_at - COALESCE(started_at, accepted_at, dispatched_at)) * 1000 AS run_ms
  FROM {TASK_RUN_TABLE}
 WHERE ended_at >= %(since)s AND ended_at < %(until)s
   AND status IN ('completed', 'failed', 'timed_out') AND agent_id IS NOT NULL"""

AGENT_TABLE_SQL = f"""
SELECT agent_id,
       count(*) AS runs,
       count(*) FILTER (WHERE status <> 'completed') AS failures,
       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY run_ms)
  FROM ({AGENT_RUNS_IN_RANGE_SQL}) AS runs
 GROUP BY agent_id
"""

# With the closed part rolled up (fleet/rollup.py: per agent, the sorted run times of [since, closed)): the runs
# that ended since are read live, and for each percentile only the slice of the closed run times that can hold
# it comes back. For the value of rank r among n = closed + live runs (m of them live), the closed runs below
# index r - m all rank below r and those above index r all rank above it, so the value is the (r - s)-th of the
# closed slice [s, r] (s = max(r - m, 0)) merged with the live run times (``_merged_rank``). The slices asked
# for are one wider on each side than the floor/ceil ranks (any wider slice gives the same value).
AGENT_TABLE_ROLLUP_SQL = f"""
WITH part AS (
  SELECT max(closed_until) AS closed
    FROM {AGENT_ROLLUP_TABLE}
   WHERE span_seconds = %(span_seconds)s AND since = %(since)s AND closed_until > %(since)s
     AND closed_until <= %(until)s
), live AS (
  SELECT agent_id, count(*) AS runs, count(*) FILTER (WHERE status <> 'completed') AS failures,
         array_agg(run_ms ORDER BY run_ms) AS run_ms
    FROM ({AGENT_RUNS_IN_RANGE_SQL.replace("%(since)s", "(SELECT closed FROM part)")}) AS runs
   GROUP BY agent_id
), closed AS (
  SELECT agent_pk AS agent_id, runs, failures, run_ms
    FROM {AGENT_ROLLUP_TABLE}
   WHERE span_seconds = %(span_seconds)s AND since = %(since)s AND closed_until = (SELECT closed FROM part)
), agents AS (
  SELECT COALESCE(c.agent_id, l.agent_id) AS agent_id, COALESCE(c.runs, 0) AS nc, COALESCE(l.runs, 0) AS m,
         COALESCE(c.failures, 0) + COALESCE(l.failures, 0) AS failures,
         c.run_ms AS closed_ms, COALESCE(l.run_ms, '{{}}') AS live_ms
    FROM closed c FULL JOIN live l ON l.agent_id = c.agent_id
)
SELECT agent_id, nc, m, failures, live_ms,
       GREATEST(floor(0.5::float8 * (nc + m - 1))::int - m - 1, 0) AS s50,
       closed_ms[GREATEST(floor(0.5::float8 * (nc + m - 1))::int - m - 1, 0) + 1
                 : ceil(0.5::float8 * (nc + m - 1))::int + 2],
       GREATEST(floor(0.95::float8 * (nc + m - 1))::int - m - 1, 0) AS s95,
       closed_ms[GREATEST(floor(0.95::float8 * (nc + m - 1))::int - m - 1, 0) + 1
                 : ceil(0.95::float8 * (nc + m - 1))::int + 2]
  FROM agents
"""


def _merged_percentile(fraction: float, closed_slice: list[float], start: int, live: list[float], n: int) -> float:
    """``percentile_cont(fraction)`` of the n run times (same arithmetic, so the same double), from the closed
    slice that starts at rank ``start`` and the live run times."""
    merged = sorted([*closed_slice, *live])
    position = fraction * (n - 1)
    low, high = math.floor(position), math.ceil(position)
    first = merged[low - start]
    return first if high == low else first + (position - low) * (merged[high - start] - first)


def agent_table_statement(window: Window, now: datetime) -> tuple[str, dict[str, Any]]:
    """The agent tables' statement: for a window in ``ROLLUP_WINDOWS`` the rolled-up one (no rows when the
    window's closed part is not there: ``agent_table`` then runs the live one), else the live one."""
    if window.key not in ROLLUP_WINDOWS:
        return AGENT_TABLE_SQL, _params(window, now)
    return AGENT_TABLE_ROLLUP_SQL, {**_rollup_params(window, now), "span_seconds": int(window.span.total_seconds())}


def _merge_rollup_rows(raw: list[tuple]) -> list[tuple]:
    """``AGENT_TABLE_ROLLUP_SQL``'s rows as ``AGENT_TABLE_SQL`` gives them: (agent, runs, failures, (p50, p95))."""
    rows = []
    for agent_id, nc, m, failures, live, s50, slice50, s95, slice95 in raw:
        n = nc + m
        p50 = _merged_percentile(0.5, slice50 or [], s50, live, n)
        p95 = _merged_percentile(0.95, slice95 or [], s95, live, n)
        rows.append((agent_id, n, failures, (p50, p95)))
    return rows


def _table(raw: list[tuple]) -> list[dict[str, Any]]:
    rows = []
    for key, runs, failures, (p50, p95) in raw:
        rows.append(
            {
                "key": key,
                "runs": runs,
                "failures": failures,
                "failure_rate": failures / runs if runs else 0.0,
                "p50_ms": p50,
                "p95_ms": p95,
            }
        )
    return rows


def workflow_table(window: Window, now: datetime) -> list[dict[str, Any]]:
    """Per workflow: sessions ended in the window, failed ones, p50/p95 session time (ms)."""
    return _table(fetch_rows(WORKFLOW_TABLE_SQL, _params(window, now)))


def agent_table(window: Window, now: datetime) -> list[dict[str, Any]]:
    """Per agent (primary key in ``key``): task runs ended in the window, failed/timed out, p50/p95 run time.

    For a window in ``ROLLUP_WINDOWS`` with its closed part rolled up (``[since, closed)``, ``closed`` within the
    window), that part plus the runs ended since; otherwise every run of the window, live. The figures are the
    same either way."""
    sql, params = agent_table_statement(window, now)
    raw = fetch_rows(sql, params)
    if sql is AGENT_TABLE_ROLLUP_SQL:
        # One statement, so the part and the runs after it are read in the same snapshot (a refresh replacing
        # the part in between cannot drop or double a run). No rows: no part (or no runs at all).
        raw = _merge_rollup_rows(raw) or fetch_rows(AGENT_TABLE_SQL, _params(window, now))
    return _table(raw)


def slowest(rows: list[dict[str, Any]], limit: int = 5) -> list[dict[str, Any]]:
    timed = [row for row in rows if row["p95_ms"] is not None]
    return sorted(timed, key=lambda row: (-row["p95_ms"], str(row["key"])))[:limit]


def most_failing(rows: list[dict[str, Any]], limit: int = 5) -> list[dict[str, Any]]:
    failing = [row for row in rows if row["failures"]]
    return sorted(failing, key=lambda row: (-row["failures"], -row["failure_rate"], str(row["key"])))[:limit]


def _statement(sql: str):
    return lambda window, now: (sql, _params(window, now))


# Every chart and table as the overview runs it (the benchmark times and explains these): name → (statement
# builder, selector). The selector includes any Python after the statement.
ALL_QUERIES = {
    "sessions": (_statement(SESSIONS_SQL), sessions_per_bucket),
    "tasks": (tasks_statement, tasks_completed_per_bucket),
    "latency": (latency_statement, latency_per_bucket),
    "workflow_table": (_statement(WORKFLOW_TABLE_SQL), workflow_table),
    "agent_table": (agent_table_statement, agent_table),
}
# The same for the rolled-up windows computed from every run of the window (as before the rollups).
LIVE_QUERIES = {
    "tasks": (_statement(TASKS_SQL), None),
    "latency": (_statement(LATENCY_SQL), None),
    "agent_table": (_statement(AGENT_TABLE_SQL), None),
}
