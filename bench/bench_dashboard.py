"""Dashboard benchmark: every chart and table query of the fleet pages against a large history.

Seeds a private database with ``--task-runs`` task runs (three per session, spread over ``--days`` days ending
now) and ``--state-records`` agent state reports, all in set-based ``INSERT … SELECT generate_series`` statements,
then VACUUM ANALYZE, then builds the 7-day rollups as the periodic task does (``fleet/rollup.py``, timed), then
times each query (``opscore_project/observability/fleet/charts.py`` as the overview runs it, the agent page's and
the workflow page's statements) for the 1 h, 24 h and 7 d windows, the rolled-up 7 d queries also live (as
before the rollups, "(live)"), plus each page's whole selector, and compares with the dashboard's indexes dropped
(``--no-compare`` skips that). The target is 50 ms per query.

    python bench/bench_dashboard.py                              # 1 M task runs, 5 M state records
    python bench/bench_dashboard.py --task-runs 100000 --state-records 500000   # a quick, reduced run

The database is ``opscore_bench_dashboard`` (``--database``), dropped at the end unless ``BENCH_KEEP_DB=1``;
``--reuse`` times an already seeded one (kept with ``BENCH_KEEP_DB=1``) without seeding again.
Results (timings and the EXPLAIN ANALYZE plans of the 7 d window) go to bench/results/dashboard-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _harness as h  # bench/ is on sys.path when this runs as a script

BASE_DIR = Path(__file__).resolve().parent.parent
TARGET_MS = 50.0

SEED_SQL = [
    # Agents: a[0001]…, idle/active/error, one in ten silent for an hour (stale).
    """
    INSERT INTO lifecycle_agent (agent_id, name, version, capabilities, capabilities_known, contact_endpoint,
        metadata, source, registered_at, state, state_details, last_seen_at, assigned_task, created_at, updated_at,
        state_timestamp)
    SELECT 'agent-' || lpad(i::text, 4, '0'), '', '1.0', '["fetch", "summarise", "publish"]', true, '', '{}',
           'webhook', %(start)s, (ARRAY['idle', 'active', 'error'])[1 + i %% 3], '{}',
           CASE WHEN i %% 10 = 0 THEN %(now)s - interval '1 hour' ELSE %(now)s END, '', %(start)s, %(now)s, %(now)s
      FROM generate_series(1, %(agents)s) AS i
    """,
    # Twenty workflows of three steps.
    """
    INSERT INTO workflows_workflowdefinition (workflow_id, version, name, description, spec, content_hash, source,
        created_at)
    SELECT 'wf-' || i, '1', '', '',
           jsonb_build_object('id', 'wf-' || i, 'version', '1', 'tasks', jsonb_build_array(
             jsonb_build_object('taskId', 'fetch', 'agentCapability', 'fetch', 'nextTaskId', 'summarise'),
             jsonb_build_object('taskId', 'summarise', 'agentCapability', 'summarise', 'nextTaskId', 'publish'),
             jsonb_build_object('taskId', 'publish', 'agentCapability', 'publish'))),
           md5(i::text), 'api', %(start)s
      FROM generate_series(1, 20) AS i
    """,
    # Sessions, evenly spread over the period; 90 % completed, 7 % failed, 3 % cancelled; the last 5 min running.
    """
    INSERT INTO workflows_workflowsession (id, workflow_id, status, initial_payload, callback_url, error,
        retry_round, created_at, started_at, ended_at, definition_id)
    SELECT gen_random_uuid(), d.workflow_id,
           CASE WHEN s.created > %(now)s - interval '5 minutes' THEN 'running'
                WHEN s.i %% 100 < 7 THEN 'failed' WHEN s.i %% 100 < 10 THEN 'cancelled' ELSE 'completed' END,
           '{}', '', '', 0, s.created, s.created,
           CASE WHEN s.created > %(now)s - interval '5 minutes' THEN NULL
                ELSE s.created + make_interval(secs => 3 + (s.i %% 57)) END,
           d.id
      FROM (SELECT i, %(now)s - (%(period)s * (i::float8 / %(sessions)s)) AS created
              FROM generate_series(1, %(sessions)s) AS i) AS s
      JOIN workflows_workflowdefinition d ON d.workflow_id = 'wf-' || (1 + s.i %% 20)
    """,
    # Three task runs per session, one after the other; the last one fails in failed sessions.
    """
    INSERT INTO workflows_taskrun (id, session_id, task_id, attempt, try_number, fallback_for, retry_round, status,
        capability, priority, parameters, dispatch_ref, dispatch_count, error, created_at, ready_at, dispatched_at,
        accepted_at, started_at, ended_at, agent_id)
    SELECT gen_random_uuid(), s.id, (ARRAY['fetch', 'summarise', 'publish'])[step], 1, 1, '', 0,
           CASE WHEN s.ended_at IS NULL THEN 'running'
                WHEN s.status = 'failed' AND step = 3 THEN 'failed'
                WHEN s.status = 'cancelled' AND step = 3 THEN 'cancelled' ELSE 'completed' END,
           'fetch', 0, '{}', '', 1, '', ready, ready, ready + wait, ready + wait + interval '40 ms',
           ready + wait + interval '150 ms',
           CASE WHEN s.ended_at IS NULL THEN NULL ELSE ready + wait + interval '150 ms' + run END,
           1 + (abs(hashtext(s.id::text)) + step) %% %(agents)s
      FROM workflows_workflowsession s
     CROSS JOIN generate_series(1, 3) AS step
     CROSS JOIN LATERAL (SELECT s.created_at + (step - 1) * interval '1 second' AS ready,
                                make_interval(secs => (abs(hashtext(s.id::text || step)) %% 2000) / 1000.0) AS wait,
                                make_interval(secs => (abs(hashtext(step || s.id::text)) %% 900) / 1000.0) AS run
                        ) AS t
    """,
    # State reports: each agent reports at a steady pace over the period; one in seven changes state.
    """
    INSERT INTO lifecycle_agentstaterecord (agent_id, state, details, reported_at, received_at)
    SELECT 1 + i %% %(agents)s,
           (ARRAY['idle', 'idle', 'active', 'active', 'idle', 'active', 'error'])[1 + (i / %(agents)s) %% 7],
           '{}', at, at
      FROM (SELECT i, %(now)s - (%(period)s * (i::float8 / %(records)s)) AS at
              FROM generate_series(1, %(records)s) AS i) AS r
    """,
]

DASHBOARD_INDEXES = ("session_ended_idx", "task_run_ended_idx", "task_run_dispatched_idx")


def setup_django(database_url: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="opscore_project.settings",
        DATABASE_URL=database_url,
        DEBUG="true",
        REDIS_URL=h.REDIS_URL,
    )
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def seed(args: argparse.Namespace, now: datetime) -> dict[str, float]:
    from django.db import connection

    sessions = args.task_runs // 3
    params = {
        "now": now,
        "start": now - timedelta(days=args.days),
        "period": timedelta(days=args.days),
        "agents": args.agents,
        "sessions": sessions,
        "records": args.state_records,
    }
    seconds = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        for name, sql in zip(
            ("agents", "definitions", "sessions", "task_runs", "state_records"), SEED_SQL, strict=True
        ):
            started = time.perf_counter()
            cursor.execute(sql, params)
            seconds[name] = round(time.perf_counter() - started, 1)
            h.say(f"seeded {name} ({cursor.rowcount} rows) in {seconds[name]} s")
    connection.close()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    seconds["vacuum_analyze"] = round(time.perf_counter() - started, 1)
    return seconds


def timed(run, repeat: int) -> dict[str, float]:
    run()  # warm the cache, as a dashboard that is being looked at is
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(samples), 2), "max_ms": round(max(samples), 2)}


def query_runs(now: datetime) -> dict[str, tuple]:
    """Every dashboard query, per window: name → (run it as the page does, (sql, params) to EXPLAIN)."""
    from lifecycle.models import Agent
    from opscore_project.observability.fleet import agents, charts, workflows
    from workflows.models import WorkflowDefinition

    agent = Agent.objects.order_by("pk").first()
    definition = WorkflowDefinition.objects.order_by("pk").first()
    stale = timedelta(seconds=600)
    runs = {}

    def sql_run(sql, params):
        return (lambda: charts.fetch_rows(sql, params)), (sql, params)

    for key, window in charts.WINDOWS.items():
        for name, (statement, selector) in charts.ALL_QUERIES.items():
            # The selector (statement plus the Python after it); what is explained is its statement.
            runs[f"{name} {key}"] = (
                lambda selector=selector, window=window: selector(window, now),
                statement(window, now),
            )
        if key in charts.ROLLUP_WINDOWS:
            for name, (statement, _selector) in charts.LIVE_QUERIES.items():
                runs[f"{name} {key} (live)"] = sql_run(*statement(window, now))
        page = {"agent": agent.pk, "since": now - window.span, "until": now, "stale": stale}
        runs[f"agent_state_strip {key}"] = sql_run(agents.STATE_CHANGES_SQL, page)
        runs[f"agent_runs {key}"] = sql_run(agents.AGENT_RUNS_SQL, page)
        runs[f"workflow_task_stats {key}"] = sql_run(
            workflows.TASK_STATS_SQL, {"definition": definition.pk, "since": now - window.span, "until": now}
        )
    return runs


def time_queries(now: datetime, repeat: int, explain: bool) -> tuple[dict, dict]:
    """Each query as the pages run it (``charts.fetch_rows``: its own transaction, work_mem, no JIT)."""
    from opscore_project.observability.fleet import charts

    timings, plans = {}, {}
    for name, (run, (sql, params)) in query_runs(now).items():
        timings[name] = timed(run, repeat)
        if explain and " 7d" in name:
            plan = charts.fetch_rows("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plans[name] = "\n".join(row[0] for row in plan)
    return timings, plans


def refresh_rollups(now: datetime) -> dict[str, float]:
    """Build the 7-day window's rollups as the periodic task does (first build, then a run with nothing new)."""
    from opscore_project.observability import services

    seconds = {}
    for label in ("first_ms", "again_ms"):
        started = time.perf_counter()
        services.fleet_rollup_refresh(now=now)
        seconds[label] = round((time.perf_counter() - started) * 1000, 1)
        h.say(f"rollup refresh ({label}): {seconds[label]} ms")
    return seconds


def time_pages(now: datetime, repeat: int) -> dict:
    """Each page's whole selector (every query it makes plus the Python around them)."""
    from lifecycle.models import Agent
    from opscore_project.observability.fleet import agents, overview, workflows

    agent_id = Agent.objects.order_by("pk").values_list("agent_id", flat=True).first()
    pages = {}
    for key in ("1h", "24h", "7d"):
        pages[f"overview {key}"] = timed(lambda key=key: overview.overview(window_key=key, now=now), repeat)
        pages[f"agent page {key}"] = timed(
            lambda key=key: agents.agent_page(agent_id=agent_id, window_key=key, now=now), repeat
        )
        pages[f"workflow page {key}"] = timed(
            lambda key=key: workflows.workflow_page(workflow_id="wf-1", window_key=key, now=now), repeat
        )
    return pages


def drop_indexes() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name in DASHBOARD_INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
        cursor.execute("ANALYZE workflows_taskrun, workflows_workflowsession")


def print_table(title: str, rows: dict, baseline: dict | None = None) -> None:
    print(f"\n{title}")
    header = f"{'query':<32}{'median ms':>11}{'max ms':>10}"
    print(header + (f"{'no index ms':>13}" if baseline else "") + "  target")
    for name, figures in rows.items():
        line = f"{name:<32}{figures['median_ms']:>11.2f}{figures['max_ms']:>10.2f}"
        if baseline:
            line += f"{baseline.get(name, {}).get('median_ms', float('nan')):>13.2f}"
        if name.endswith("(live)"):
            line += "  (without the rollup, for comparison)"
        else:
            line += "  ok" if figures["median_ms"] <= TARGET_MS else "  OVER"
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-runs", type=int, default=1_000_000)
    parser.add_argument("--state-records", type=int, default=5_000_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--days", type=int, default=90, help="the history's length (default 90 days)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database", default="opscore_bench_dashboard")
    parser.add_argument("--reuse", action="store_true", help="time an already seeded database")
    parser.add_argument("--no-compare", action="store_true", help="skip the timings without the dashboard indexes")
    args = parser.parse_args()

    database_url = f"{h.PG_SERVER_URL}/{args.database}"
    context = nullcontext(database_url) if args.reuse else h.private_database(args.database)
    with context as database_url:
        env = h.production_env(database_url, 0, DEBUG="true")
        h.say(f"migrating {args.database}")  # also when reused: a database seeded before a new migration
        h.manage(env, "migrate", "--noinput")
        setup_django(database_url)
        from django.utils import timezone

        now = timezone.now()
        seeded = {}
        if args.reuse:
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("SELECT max(created_at) FROM workflows_workflowsession")
                now = cursor.fetchone()[0] or now
        else:
            h.say(f"seeding {args.task_runs:,} task runs and {args.state_records:,} state records")
            seeded = seed(args, now)
        rollups = refresh_rollups(now)
        queries, plans = time_queries(now, args.repeat, explain=True)
        pages = time_pages(now, args.repeat)
        print_table("Queries (with the dashboard indexes)", queries)
        print_table("Pages (whole selector)", pages)
        baseline = {}
        if not args.no_compare:
            drop_indexes()
            baseline, _ = time_queries(now, max(3, args.repeat // 2), explain=False)
            print_table("Queries: with indexes vs. without", queries, baseline)
            if args.reuse:
                h.say("the dashboard indexes were dropped: migrate workflows to 0001 and back to restore them")
    result = {
        "benchmark": "dashboard",
        "commit": h.git_commit(),
        "at": datetime.now(UTC).isoformat(),
        "task_runs": args.task_runs,
        "state_records": args.state_records,
        "agents": args.agents,
        "days": args.days,
        "target_ms": TARGET_MS,
        "seed_seconds": seeded,
        "rollup_refresh_ms": rollups,
        "queries": queries,
        "queries_without_dashboard_indexes": baseline,
        "pages": pages,
        "plans_7d": plans,
    }
    h.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = h.RESULTS_DIR / f"dashboard-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    h.say(f"results: {path}")
    over = [
        name for name, figures in queries.items() if figures["median_ms"] > TARGET_MS and not name.endswith("(live)")
    ]
    if over:
        h.say(f"over the {TARGET_MS:.0f} ms target: {', '.join(over)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
