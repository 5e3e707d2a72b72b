"""The 7-day window's rollups give exactly the live figures, worked out by hand, at the edges where they split.

fleet_data's history (all between 11:10 and 12:00 when NOW is 12:00:30) falls in one 2-hour bucket of the 7-day
window, 10:00 – 12:00. The checks run at later moments, with the same history.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connections

from opscore_project.locks import lock_key
from opscore_project.observability import services, tasks
from opscore_project.observability.fleet import charts, overview, rollup
from opscore_project.observability.models import FleetAgentRuns, FleetChartBucket
from opscore_project.observability.tests.fleet_data import at, seed_fleet
from opscore_project.schedules import default_schedules
from workflows.models import TaskRun, WorkflowSession

pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not settings.IS_POSTGRES, reason="Postgres only")]

NOW = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)
WEEK = charts.WINDOWS["7d"]
BUCKET = at(NOW, "10:00:00")  # the 2-hour bucket holding every dispatch of the history


@pytest.fixture
def fleet(settings):
    settings.OPSCORE_AGENT_STALE_SECONDS = 600
    return seed_fleet(NOW)


def latency_of(bucket: datetime, now: datetime) -> tuple:
    series = charts.latency_per_bucket(WEEK, now)
    return series["queue_p50"].get(bucket), series["queue_p95"].get(bucket), series["dispatch_p95"].get(bucket)


def completed_per_minute(bucket: datetime, now: datetime) -> float:
    return charts.tasks_completed_per_bucket(WEEK, now).get(bucket, 0) / WEEK.step_minutes


def live_agent_table(now: datetime) -> list[dict]:
    """The agent table as computed from every run of the window (no rollup)."""
    return sorted(charts._table(charts.fetch_rows(charts.AGENT_TABLE_SQL, charts._params(WEEK, now))), key=key)


def key(row: dict):
    return row["key"]


def add_run(fleet, name: str, agent: str, status: str, ended: datetime, run_ms: float) -> None:
    """A run of session S3 that ran ``run_ms`` on ``agent`` and ended at ``ended`` (any moment)."""
    started = ended - timedelta(milliseconds=run_ms)
    fleet.runs[name] = TaskRun.objects.create(
        session=fleet.sessions["S3"],
        task_id=name,
        status=status,
        capability="fetch",
        agent=fleet.agents[agent],
        created_at=started - timedelta(seconds=1),
        ready_at=started - timedelta(seconds=1),
        dispatched_at=started - timedelta(milliseconds=100),
        started_at=started,
        ended_at=ended,
    )


def test_a_closed_latency_bucket_is_read_from_the_rollup_with_the_live_figures(fleet):
    later = NOW + timedelta(hours=3)  # 15:00:30: the 10:00 bucket ended long ago
    # Queue waits 500, 1000, 1000, 2000, 3000, 4000, 10000 ms; dispatch latencies 100, 200, 500, 500, 1000,
    # 1000, 2000 ms (seven runs dispatched between 11:10 and 11:59).
    expected = (2000.0, pytest.approx(8200.0), pytest.approx(1700.0))
    assert latency_of(BUCKET, later) == expected
    assert completed_per_minute(BUCKET, later) == 3 / 120  # r1, r2, r5

    # r7 (dispatched 11:59:10) is still running: its bucket stays open, the empty ones close.
    services.fleet_rollup_refresh(now=later)
    assert not FleetChartBucket.objects.filter(bucket=BUCKET).exists()
    assert FleetChartBucket.objects.filter(dispatched=0).count() == WEEK.buckets - 2  # all but 10:00 and 14:00 (open)
    assert latency_of(BUCKET, later) == expected

    TaskRun.objects.filter(pk=fleet.runs["r7"].pk).update(status="completed", ended_at=at(NOW, "11:59:50"))
    services.fleet_rollup_refresh(now=later)
    closed = FleetChartBucket.objects.get(bucket=BUCKET)
    assert (closed.dispatched, closed.queue_p50, closed.queue_p95, closed.dispatch_p95) == (
        7,
        2000.0,
        pytest.approx(8200.0),
        pytest.approx(1700.0),
    )
    # r1, r2, r5 and now r7 ended as completed in the bucket (4 in 120 minutes).
    assert closed.tasks_completed == 4
    assert completed_per_minute(BUCKET, later) == 4 / 120
    # From now on the charts read that row: the runs themselves are no longer needed.
    WorkflowSession.objects.all().delete()
    assert latency_of(BUCKET, later) == expected
    assert completed_per_minute(BUCKET, later) == 4 / 120
    assert latency_of(at(NOW, "12:00:00"), later) == (None, None, None)  # closed without dispatches: a gap


def test_a_latency_bucket_closes_only_five_minutes_after_its_end(fleet):
    TaskRun.objects.filter(pk=fleet.runs["r7"].pk).update(status="completed", ended_at=at(NOW, "12:00:10"))
    rollup.refresh(now=at(NOW, "12:04:59.999"))
    assert not FleetChartBucket.objects.filter(bucket=BUCKET).exists()
    assert completed_per_minute(BUCKET, at(NOW, "12:04:59.999")) == 3 / 120  # live: r1, r2, r5
    rollup.refresh(now=at(NOW, "12:05:00"))
    assert FleetChartBucket.objects.get(bucket=BUCKET).dispatched == 7


def test_the_agent_tables_add_the_runs_ended_since_the_last_full_hour_to_the_rolled_up_ones(fleet):
    later = at(NOW, "13:00:30")  # closed part: up to 12:00 (the last full hour 5 min ago); live from 12:00
    add_run(fleet, "late", "agent-a", "completed", at(NOW, "12:40:00"), 12000)  # live
    add_run(fleet, "at-the-hour", "agent-c", "failed", at(NOW, "12:00:00"), 5000)  # live: the closed part ends before
    add_run(fleet, "just-before", "agent-b", "completed", at(NOW, "11:59:59.999"), 1000)  # closed
    before = live_agent_table(later)

    services.fleet_rollup_refresh(now=later)
    since, _until = WEEK.bounds(later)
    parts = {
        row.agent_pk: (row.runs, row.failures, row.run_ms)
        for row in FleetAgentRuns.objects.filter(since=since, closed_until=at(NOW, "12:00:00"))
    }
    a, b, c = (fleet.agents[name].pk for name in ("agent-a", "agent-b", "agent-c"))
    assert parts == {
        a: (3, 0, [pytest.approx(9000.0), pytest.approx(9500.0), pytest.approx(26800.0)]),
        b: (3, 2, [pytest.approx(1000.0), pytest.approx(10000.0), pytest.approx(68900.0)]),
        c: (1, 1, [pytest.approx(26000.0)]),
    }

    rows = sorted(charts.agent_table(WEEK, later), key=key)
    assert rows == before  # exactly the live statement's figures
    figures = {row["key"]: (row["runs"], row["failures"], row["p50_ms"], row["p95_ms"]) for row in rows}
    # agent-a: 9000, 9500, 12000 (live), 26800; agent-b: 1000, 10000, 68900; agent-c: 5000 (live), 26000.
    assert figures == {
        a: (4, 0, pytest.approx(10750.0), pytest.approx(24580.0)),
        b: (3, 2, pytest.approx(10000.0), pytest.approx(63010.0)),
        c: (2, 2, pytest.approx(15500.0), pytest.approx(24950.0)),
    }
    tables = overview.overview_tables(WEEK, later)
    assert [row["key"] for row in tables["slowest_agents"]] == ["agent-b", "agent-c", "agent-a"]
    # The closed part is read from the rollup: a run deleted since still counts there, a live one does not.
    TaskRun.objects.filter(pk__in=[fleet.runs["r1"].pk, fleet.runs["late"].pk]).delete()
    runs = {row["key"]: row["runs"] for row in charts.agent_table(WEEK, later)}
    assert runs[a] == 3  # r1 (closed) kept, "late" (live) gone


def test_the_window_start_cuts_the_rolled_up_runs_like_the_live_ones(fleet):
    later = NOW + timedelta(days=7, hours=1)  # the window starts at 14:00 on NOW's day
    since, _until = WEEK.bounds(later)
    assert since == at(NOW, "14:00:00")
    add_run(fleet, "at-start", "agent-a", "completed", since, 7000)  # in the window
    add_run(fleet, "before-start", "agent-a", "failed", since - timedelta(microseconds=1), 99000)  # not
    add_run(fleet, "after-start", "agent-a", "completed", since + timedelta(hours=3), 3000)  # until the next start
    services.fleet_rollup_refresh(now=later)
    assert sorted(charts.agent_table(WEEK, later), key=key) == live_agent_table(later)
    [row] = charts.agent_table(WEEK, later)
    assert (row["runs"], row["failures"], row["p50_ms"], row["p95_ms"]) == (2, 0, 5000.0, pytest.approx(6800.0))

    # Two hours on, the window starts at 16:00: the part built in advance for that start is used as it is
    # (nothing refreshed in between), with everything since its end read live.
    moved = later + timedelta(hours=2)
    assert FleetAgentRuns.objects.filter(since=WEEK.bounds(moved)[0]).exists()
    [row] = charts.agent_table(WEEK, moved)
    assert (row["runs"], row["p50_ms"]) == (1, 3000.0)
    assert charts.agent_table(WEEK, moved) == live_agent_table(moved)


def test_without_a_rollup_the_tables_are_computed_live(fleet):
    later = NOW + timedelta(hours=3)
    assert not FleetAgentRuns.objects.exists()
    rows = {row["key"]: (row["runs"], row["p95_ms"]) for row in charts.agent_table(WEEK, later)}
    assert rows[fleet.agents["agent-b"].pk] == (2, pytest.approx(65955.0))


def test_old_parts_and_buckets_are_dropped(fleet):
    later = NOW + timedelta(hours=3)
    services.fleet_rollup_refresh(now=later)
    much_later = later + timedelta(days=8)
    services.fleet_rollup_refresh(now=much_later)
    since, _until = WEEK.bounds(much_later)
    assert set(FleetAgentRuns.objects.values_list("since", flat=True)) <= {since, since + WEEK.step}
    assert not FleetChartBucket.objects.filter(bucket__lt=since).exists()


def test_a_refresh_while_another_runs_does_nothing(fleet):
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [lock_key("observability.fleet_rollup")])
        assert services.fleet_rollup_refresh(now=NOW + timedelta(hours=3)) == {"skipped": "locked"}
        assert not FleetChartBucket.objects.exists()
    finally:
        other.close()
    assert tasks.fleet_rollup()["7d"]["buckets_closed"] >= 0


def test_the_refresh_is_a_default_periodic_task():
    spec = next(s for s in default_schedules() if s.task == "opscore_project.observability.tasks.fleet_rollup")
    assert spec.every_seconds <= 60 * 60 and spec.expires_seconds


def test_many_runs_split_anywhere_between_rollup_and_live_give_the_live_percentiles(fleet):
    rng = random.Random(16)
    start = at(NOW, "12:00:00")
    for index in range(240):  # four hours of runs on three agents, some with equal run times
        ended = start + timedelta(seconds=rng.uniform(0, 4 * 3600))
        run_ms = rng.choice([rng.uniform(1, 90000), 500.0, 2500.0])
        add_run(fleet, f"run-{index}", rng.choice(["agent-a", "agent-b", "agent-c"]), "completed", ended, run_ms)
    services.fleet_rollup_refresh(now=start + timedelta(hours=2, minutes=10))  # closed part: up to 14:00
    for minutes in (130, 170, 230, 235):  # the open part grows from 10 minutes to 1 h 55 min of runs
        moment = start + timedelta(minutes=minutes)
        assert set(
            FleetAgentRuns.objects.filter(since=WEEK.bounds(moment)[0]).values_list("closed_until", flat=True)
        ) == {at(NOW, "14:00:00")}
        assert len(charts.fetch_rows(*charts.agent_table_statement(WEEK, moment))) == 3  # the rolled-up statement
        assert sorted(charts.agent_table(WEEK, moment), key=key) == live_agent_table(moment)
