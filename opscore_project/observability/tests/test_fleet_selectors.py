"""Every aggregate of the fleet pages against values worked out by hand from fleet_data's seeded history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.conf import settings

from opscore_project.observability.fleet import agents, charts, overview, workflows
from opscore_project.observability.tests.fleet_data import at, seed_fleet, seed_states

# The charts and tables are Postgres statements (the embedded SQLite mode shows counts only).
pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not settings.IS_POSTGRES, reason="Postgres only")]

NOW = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)
HOUR = charts.WINDOWS["1h"]


@pytest.fixture
def fleet(settings):
    settings.OPSCORE_AGENT_STALE_SECONDS = 600
    return seed_fleet(NOW)


def nonzero(window, values) -> dict[str, float]:
    """{"HH:MM": value} of the buckets that hold something."""
    starts = charts.bucket_starts(window, NOW)
    return {start.strftime("%H:%M"): value for start, value in zip(starts, values, strict=True) if value}


def test_the_one_hour_window_has_sixty_minute_buckets_ending_after_now():
    since, until = HOUR.bounds(NOW)
    assert (since, until) == (at(NOW, "11:01:00"), at(NOW, "12:01:00"))
    assert HOUR.buckets == 60


def test_agent_counts_split_registered_agents_by_state_and_count_the_stale_one(fleet):
    counts = overview.agent_counts(NOW)
    assert {row["state"]: row["count"] for row in counts["states"]} == {"idle": 1, "active": 1, "error": 1}
    assert counts["total"] == 3  # agent-d is deregistered
    assert counts["stale"] == 1  # agent-c, silent for 20 min
    assert counts["deregistered"] == 1


def test_session_counts_are_running_waiting_and_failed_in_the_last_hour(fleet):
    counts = overview.session_counts(NOW)
    assert counts["running"] == 1  # S5
    assert counts["waiting"] == 1  # S6
    assert counts["failed_last_hour"] == 2  # S2 and S4; S7 ended at 10:30
    assert counts["tasks_waiting"] == 1 and counts["oldest_wait_s"] == 60  # r8, ready at 11:59:30
    assert counts["waiting_by_capability"] == [{"capability": "fetch", "count": 1, "oldest_wait_s": 60}]
    assert counts["waiting_for_input"] == 0


def test_sessions_waiting_for_a_person_are_counted_apart(fleet):
    from workflows.models import WorkflowDefinition, WorkflowSession

    definition = WorkflowDefinition.objects.first()
    for _ in range(2):
        WorkflowSession.objects.create(
            definition=definition, workflow_id=definition.workflow_id, status="waiting_for_input", created_at=NOW
        )
    counts = overview.session_counts(NOW)
    assert (counts["waiting_for_input"], counts["running"], counts["waiting"]) == (2, 1, 1)


def test_the_sessions_chart_counts_starts_completions_and_failures_per_minute(fleet):
    series = overview.overview_charts(HOUR, NOW)["sessions"]
    assert len(series["x"]) == 60
    assert nonzero(HOUR, series["started"]) == {"11:10": 2, "11:30": 2, "11:59": 2}
    assert nonzero(HOUR, series["completed"]) == {"11:10": 1, "11:30": 1}
    assert nonzero(HOUR, series["failed"]) == {"11:11": 1, "11:31": 1}


def test_the_tasks_chart_counts_completed_runs_by_end(fleet):
    series = overview.overview_charts(HOUR, NOW)["tasks"]
    assert nonzero(HOUR, series["completed"]) == {"11:10": 2, "11:30": 1}


def test_larger_windows_show_rates_per_minute(fleet):
    day = charts.WINDOWS["24h"]
    series = overview.overview_charts(day, NOW)["sessions"]
    # 15-minute buckets: 10:00 holds S7 (1 / 15 per minute), 11:00 S1 and S2 (2 / 15), 11:30 S3 and S4,
    # 11:45 S5 and S6.
    assert nonzero(day, series["started"]) == {"10:00": 0.067, "11:00": 0.133, "11:30": 0.133, "11:45": 0.133}
    assert nonzero(day, series["failed"]) == {"10:30": 0.067, "11:00": 0.067, "11:30": 0.067}


def test_queue_wait_and_dispatch_latency_percentiles_per_bucket(fleet):
    latency = overview.overview_charts(HOUR, NOW)["latency"]
    # 11:10: queue waits 2000, 1000, 4000, 1000 ms; dispatch latencies 500, 200, 1000 (from the 202), 100 ms.
    # 11:30: queue 500 and 3000; dispatch 500 and 1000. 11:59: queue 10000, dispatch 2000.
    assert nonzero(HOUR, latency["queue_p50"]) == {"11:10": 1500.0, "11:30": 1750.0, "11:59": 10000.0}
    assert nonzero(HOUR, latency["queue_p95"]) == {"11:10": 3700.0, "11:30": 2875.0, "11:59": 10000.0}
    assert nonzero(HOUR, latency["dispatch_p95"]) == {"11:10": 925.0, "11:30": 975.0, "11:59": 2000.0}
    assert latency["queue_p50"][0] is None  # an empty bucket is a gap, not a zero


def test_the_workflow_tables_rank_by_p95_session_time_and_by_failures(fleet):
    tables = overview.overview_tables(HOUR, NOW)
    slowest = [(row["key"], row["runs"], row["p50_ms"], row["p95_ms"]) for row in tables["slowest_workflows"]]
    # wf-report: S1 40 s, S2 90 s, S3 10 s (S7 ended before the window); wf-other: S4 30 s.
    assert slowest == [("wf-report", 3, 40000.0, 85000.0), ("wf-other", 1, 30000.0, 30000.0)]
    failing = [(row["key"], row["failures"], round(row["failure_rate"], 3)) for row in tables["failing_workflows"]]
    assert failing == [("wf-other", 1, 1.0), ("wf-report", 1, 0.333)]


def test_the_agent_tables_rank_by_p95_run_time_and_by_failed_runs(fleet):
    tables = overview.overview_tables(HOUR, NOW)
    # agent-a: 9500, 26800, 9000 ms; agent-b: 10000 (from AgentKit's 202, no active report), 68900; agent-c: 26000.
    slowest = [(row["key"], row["runs"], row["p50_ms"], round(row["p95_ms"], 1)) for row in tables["slowest_agents"]]
    assert slowest == [
        ("agent-b", 2, 39450.0, 65955.0),
        ("agent-c", 1, 26000.0, 26000.0),
        ("agent-a", 3, 9500.0, 25070.0),
    ]
    failing = [(row["key"], row["failures"]) for row in tables["failing_agents"]]
    assert failing == [("agent-b", 2), ("agent-c", 1)]


def test_the_state_strip_shows_periods_with_stale_silences(fleet):
    agent = fleet.agents["agent-a"]
    seed_states(agent, NOW)
    periods = agents.state_periods(agent, since=at(NOW, "11:00:30"), until=NOW, now=NOW)
    got = [(p["state"], p["start"].strftime("%H:%M:%S"), p["end"].strftime("%H:%M:%S")) for p in periods]
    assert got == [
        ("idle", "11:00:30", "11:05:00"),  # the report before the window still holds, until 10 min of silence
        ("stale", "11:05:00", "11:10:00"),
        ("active", "11:10:00", "11:10:40"),
        ("idle", "11:10:40", "11:30:00"),  # 11:20 repeated idle; 11:20 + 10 min without a report
        ("stale", "11:30:00", "11:40:00"),
        ("error", "11:40:00", "11:45:00"),
        ("idle", "11:45:00", "11:55:00"),
        ("stale", "11:55:00", "12:00:30"),
    ]
    assert sum(p["width_pct"] for p in periods) == pytest.approx(100, abs=0.01)
    assert periods[2]["left_pct"] == pytest.approx(9.5 / 60 * 100, abs=0.001)


def test_an_agent_that_never_reported_is_unknown_for_the_whole_window(fleet):
    periods = agents.state_periods(fleet.agents["agent-b"], since=at(NOW, "11:00:30"), until=NOW, now=NOW)
    assert [(p["state"], p["width_pct"]) for p in periods] == [("unknown", 100.0)]


def test_agent_run_figures_and_recent_failures(fleet):
    page = agents.agent_page(agent_id="agent-b", window_key="1h", now=NOW)
    assert page["runs"] == {
        "runs": 2,
        "completed": 0,
        "failed": 2,
        "success_rate": 0.0,
        "p50_ms": 39450.0,
        "p95_ms": pytest.approx(65955.0),
    }
    assert [(run.task_id, run.status, run.error) for run in page["failures"]] == [
        ("fetch", "timed_out", "No report within 60 s"),
        ("fetch", "failed", "Source unreachable"),
    ]
    assert agents.agent_page(agent_id="agent-a", window_key="1h", now=NOW)["runs"]["success_rate"] == 1.0
    assert agents.agent_page(agent_id="nobody", now=NOW) is None


def test_per_task_statistics_of_a_workflow_version(fleet):
    page = workflows.workflow_page(workflow_id="wf-report", version="1", window_key="1h", now=NOW)
    stats = {t["id"]: (t["runs"], t["failures"], t["retries"], t["p95_ms"]) for t in page["tasks"]}
    # fetch: r1 9500, r3 10000, r4 68900 (a retry, timed out), r5 9000 ended; r8 pending (counted as a run).
    assert stats["fetch"] == (5, 2, 1, pytest.approx(60065.0))
    assert stats["summarise"] == (1, 0, 0, pytest.approx(26800.0))
    assert stats["publish"] == (0, 0, 0, None)


def test_the_workflow_graph_has_every_task_and_edge(fleet):
    page = workflows.workflow_page(workflow_id="wf-report", window_key="1h", now=NOW)
    assert page["definition"].version == "2"  # latest by default
    page = workflows.workflow_page(workflow_id="wf-report", version="1", now=NOW)
    layout = page["layout"]
    assert [n.id for n in layout.nodes] == ["fetch", "summarise", "translate", "lite", "publish"]
    assert {(e.source, e.target, e.kind) for e in layout.edges} == {
        ("fetch", "summarise", "next"),
        ("fetch", "translate", "depends"),
        ("summarise", "publish", "depends"),
        ("translate", "publish", "depends"),
        ("translate", "lite", "fallback"),
    }
    columns = {n.id: n.x for n in layout.nodes}
    assert columns["fetch"] < columns["summarise"] == columns["translate"] < columns["publish"]
    assert columns["lite"] > columns["translate"]


def test_a_sessions_graph_colours_each_task_by_its_latest_attempt(fleet):
    session = fleet.sessions["S2"]
    page = workflows.workflow_page(workflow_id="wf-report", session_id=str(session.pk), now=NOW)
    status = {n.id: (n.status, n.attempts) for n in page["layout"].nodes}
    assert status["fetch"] == ("timed_out", 2)
    assert status["summarise"] == ("not_run", 0)
    # A session of another workflow is not shown on this one's page.
    other = workflows.workflow_page(workflow_id="wf-report", session_id=str(fleet.sessions["S4"].pk), now=NOW)
    assert other["session"] is None


def test_the_embedded_mode_builds_the_same_strip_without_window_functions(fleet, settings):
    agent = fleet.agents["agent-a"]
    seed_states(agent, NOW)
    on_postgres = agents.state_periods(agent, since=at(NOW, "11:00:30"), until=NOW, now=NOW)
    settings.IS_POSTGRES = False  # the ORM/Python twin the SQLite mode uses
    assert agents.state_periods(agent, since=at(NOW, "11:00:30"), until=NOW, now=NOW) == on_postgres


def test_the_embedded_mode_overview_has_counts_but_no_charts(fleet, settings):
    settings.IS_POSTGRES = False
    page = overview.overview(window_key="1h", now=NOW)
    assert page["charts"] is None and page["tables"] is None
    assert page["sessions"]["running"] == 1


def test_agent_flags_are_read_from_whichever_field_the_agent_model_has(fleet):
    from django.db.models import BooleanField, DateTimeField, Q

    assert overview._flag_filter("drained", NOW, {"drained_at": DateTimeField()}) == Q(drained_at__isnull=False)
    # A quarantine holds until its deadline: one that ended is not counted.
    assert overview._flag_filter("quarantined", NOW, {"quarantined_until": DateTimeField()}) == Q(
        quarantined_until__gt=NOW
    )
    assert overview._flag_filter("drained", NOW, {"is_drained": BooleanField()}) == Q(is_drained=True)
    assert overview._flag_filter("drained", NOW, {}) is None
    # On the real model: agent-d carries deregistered_at.
    flag = overview._flag_filter("deregistered", NOW)
    assert list(overview.Agent.objects.filter(flag).values_list("agent_id", flat=True)) == ["agent-d"]
