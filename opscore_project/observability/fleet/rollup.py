"""What the 7-day window of the overview reads instead of a week of task runs: closed parts, kept up to date.

A week holds tens of thousands of task runs; sorting them for percentiles on every page view was over the
50 ms budget at a million runs. Two tables keep the part of the window that can no longer change:

- ``FleetChartBucket``: each closed bucket of the latency chart (queue wait p50/p95, dispatch latency p95) and
  of the tasks chart (runs completed), as the charts' own statements computed them. The charts read those and
  compute only the other buckets live.
- ``FleetAgentRuns``: per agent, the task runs that ended in ``[since, closed_until)`` of the window: counts and
  the sorted run times. The agent tables add the runs that ended since (the current hour, a few hundred) and
  take the exact percentiles of the union (``charts.agent_table``).

Nothing is approximated: the figures are exactly those of the live statements (the selector tests compare
them). ``refresh`` (the periodic task ``fleet_rollup``, every minute, under a lock) brings both up to date; it
writes nothing on the engine's path. While it has not run (or for a window it has not covered), the pages
compute everything live, as before: slower, never wrong.

When is a part closed? A task run's end is final (retries and redeliveries create or reset other fields, never
an ended run), so the agent part closes at the last full hour ``SETTLE`` ago (the margin covers the engine's
transactions that commit after the moment they stamped). A chart bucket closes ``SETTLE`` after its end and
only once every run dispatched in it has ended: until a run has started, its dispatch latency is unknown, and a
run sent to another agent leaves the bucket.

Rows deleted by hand (sessions or agents deleted in the admin) leave the agent part at its next hourly rebuild;
a closed chart bucket keeps them until it leaves the window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction

from opscore_project.observability.fleet import charts
from opscore_project.observability.models import FleetAgentRuns, FleetChartBucket

SETTLE = timedelta(minutes=5)
HOUR = timedelta(hours=1)
BUCKET_TABLE = FleetChartBucket._meta.db_table
AGENT_RUNS_TABLE = FleetAgentRuns._meta.db_table


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """``moment`` rounded down to a multiple of ``step`` since the epoch (how the chart buckets are aligned)."""
    seconds = step.total_seconds()
    return datetime.fromtimestamp((moment.timestamp() // seconds) * seconds, tz=moment.tzinfo)


def agent_closed_until(now: datetime) -> datetime:
    return floor_to(now - SETTLE, HOUR)


# The tasks and latency charts' per-bucket figures (charts.TASKS_BUCKET_SQL, charts.LATENCY_BUCKET_SQL), for the
# closed buckets of [since, closed_end) missing from the table and holding no run that has not ended (whatever
# its status: dispatched, running, or any other state a run can wait in).
BUCKET_CLOSE_SQL = f"""
WITH missing AS MATERIALIZED (  -- first the few buckets not closed yet: only those are checked for open runs
  SELECT g.bucket
    FROM generate_series(%(since)s::timestamptz, %(closed_end)s::timestamptz - %(step)s::interval,
                         %(step)s::interval) AS g(bucket)
   WHERE NOT EXISTS (SELECT 1 FROM {BUCKET_TABLE} c WHERE c.step_seconds = %(step_seconds)s AND c.bucket = g.bucket)
)
INSERT INTO {BUCKET_TABLE} (step_seconds, bucket, dispatched, queue_p50, queue_p95, dispatch_p95, tasks_completed,
                            computed_at)
SELECT %(step_seconds)s, b.bucket, p.n, p.queue[1], p.queue[2], p.dispatch_p95, t.n, %(now)s
  FROM missing AS b
 CROSS JOIN LATERAL ({charts.LATENCY_BUCKET_SQL}) AS p
 CROSS JOIN LATERAL ({charts.TASKS_BUCKET_SQL}) AS t
 WHERE NOT EXISTS (SELECT 1 FROM {charts.TASK_RUN_TABLE} r
                    WHERE r.dispatched_at >= b.bucket AND r.dispatched_at < b.bucket + %(step)s::interval
                      AND r.ended_at IS NULL)
ON CONFLICT (step_seconds, bucket) DO NOTHING
"""

AGENT_RUNS_BUILD_SQL = f"""
INSERT INTO {AGENT_RUNS_TABLE} (span_seconds, since, closed_until, agent_pk, runs, failures, run_ms)
SELECT %(span_seconds)s, %(since)s, %(closed)s, agent_id, count(*),
       count(*) FILTER (WHERE status <> 'completed'), array_agg(run_ms ORDER BY run_ms)
  FROM ({charts.AGENT_RUNS_IN_RANGE_SQL}) AS runs
 GROUP BY agent_id
"""


def _close_buckets(window: charts.Window, now: datetime) -> int:
    since, _until = window.bounds(now)
    closed_end = floor_to(now - SETTLE, window.step)
    params = {
        "step_seconds": int(window.step.total_seconds()),
        "step": window.step,
        "since": since,
        "closed_end": closed_end,
        "now": now,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(charts.SETTINGS_SQL)
        cursor.execute(BUCKET_CLOSE_SQL, params)
        added = cursor.rowcount
    # Buckets no window shows any more.
    FleetChartBucket.objects.filter(step_seconds=params["step_seconds"], bucket__lt=since).delete()
    return added


def _build_agent_runs(window: charts.Window, since: datetime, closed: datetime) -> bool:
    """(Re)build the agent part of ``[since, closed)`` unless it is already there. True when rebuilt."""
    span = int(window.span.total_seconds())
    current = FleetAgentRuns.objects.filter(span_seconds=span, since=since).values_list("closed_until", flat=True)
    if closed <= since or set(current) == {closed}:
        return False
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(charts.SETTINGS_SQL)
        FleetAgentRuns.objects.filter(span_seconds=span, since=since).delete()
        cursor.execute(AGENT_RUNS_BUILD_SQL, {"span_seconds": span, "since": since, "until": closed, "closed": closed})
    return True


def refresh(*, now: datetime) -> dict[str, Any]:
    """Bring the closed parts of every rolled-up window up to ``now``. Idempotent; cheap when nothing closed.

    The agent part is built for the window's current start and for the next one (the start moves by one bucket
    when the bucket holding ``now`` ends), so the tables need no live week when that happens.
    """
    done: dict[str, Any] = {}
    closed = agent_closed_until(now)
    for key in charts.ROLLUP_WINDOWS:
        window = charts.WINDOWS[key]
        since, _until = window.bounds(now)
        starts = (since, since + window.step)
        rebuilt = [start for start in starts if _build_agent_runs(window, start, closed)]
        FleetAgentRuns.objects.filter(span_seconds=int(window.span.total_seconds())).exclude(since__in=starts).delete()
        done[key] = {"buckets_closed": _close_buckets(window, now), "agent_parts_rebuilt": len(rebuilt)}
    return done
