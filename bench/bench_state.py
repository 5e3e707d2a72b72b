"""`make bench-state`: state reports per second through the production web server, and the bare-endpoint ratio.

Starts Ops-Core as `make run` does (granian via opscore_project/webserver.py, DEBUG off, fresh secrets) on a
private database, registers 1,000 agents, then with wrk (64 connections, 20 s after a warm-up):
  1. POST /v1/opscore/bench/bare — a trivial DRF POST, no database work (the ceiling of this stack here);
  2. POST /v1/opscore/agent/{id}/state — SDK-shaped reports rotating over the agents, each with its own timestamp.
Prints req/s, latency percentiles, errors, the durability check (every accepted report is a history row), the
state/bare ratio and the peak RSS of the web workers. Tunables: BENCH_DURATION, BENCH_CONNECTIONS,
BENCH_WRK_THREADS, BENCH_WARMUP; the server honours WEB_WORKERS / WEB_THREADS like `make run`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

from opscore_project.webserver import web_server_config

DB_NAME = "opscore_bench_state"
AGENTS = 1000
AGENT_PREFIX = "bench-agent-"
DURATION = int(os.environ.get("BENCH_DURATION", "20"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))
LUA = h.BENCH_DIR / "state_report.lua"

TARGETS = {"rps": 2500.0, "p99_ms": 50.0, "ratio": 0.5, "web_rss_mb": 120.0}

REGISTER_AGENTS = f"""
from lifecycle.services import agent_register
for i in range({AGENTS}):
    agent_register(agent_id="{AGENT_PREFIX}%04d" % i, name="Bench agent %d" % i, version="1.0",
                   capabilities=["bench"], contact_endpoint="http://127.0.0.1:9/", metadata={{}}, source="webhook")
"""


def wrk(url: str, mode: str, api_key: str, duration: int, base_us: int) -> dict:
    figures = h.run_wrk(
        url,
        LUA,
        connections=CONNECTIONS,
        duration=duration,
        threads=WRK_THREADS,
        script_args=[mode, api_key, str(AGENTS), AGENT_PREFIX, str(base_us), str(WRK_THREADS)],
    )
    seconds = figures["duration_us"] / 1e6
    figures["rps"] = figures["requests"] / seconds
    figures["socket_errors"] = sum(figures[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return figures


def history_rows(database_url: str) -> int:
    return int(h.sql_value(database_url, "SELECT count(*) FROM lifecycle_agentstaterecord"))


def settled_history_rows(database_url: str) -> int:
    """The history count once requests still in flight when wrk stopped have finished."""
    previous = -1
    while True:
        time.sleep(0.5)
        current = history_rows(database_url)
        if current == previous:
            return current
        previous = current


def line(label: str, f: dict) -> str:
    return (
        f"{label:<14} {f['rps']:>8.0f} req/s   p50 {f['p50_us'] / 1000:6.1f} ms   p90 {f['p90_us'] / 1000:6.1f} ms"
        f"   p99 {f['p99_us'] / 1000:6.1f} ms   max {f['max_us'] / 1000:6.1f} ms   "
        f"non-2xx {f['non2xx']}   socket errors {f['socket_errors']}"
    )


def main() -> int:
    h.ensure_wrk()
    commit = h.git_commit()
    port = h.free_port()
    with h.private_database(DB_NAME) as database_url:
        env = h.production_env(database_url, port, OPSCORE_BENCHMARK_ENDPOINTS="true")
        api_key = env["OPSCORE_API_KEY"]
        h.say(f"commit {commit}; migrating {DB_NAME}")
        h.manage(env, "migrate", "--noinput", "-v", "0")
        h.say(f"registering {AGENTS} agents")
        h.run_python(env, REGISTER_AGENTS)
        server = h.Process("bench-state-web", h.web_server_args(env), env)
        try:
            base = f"http://127.0.0.1:{port}"
            h.wait_http_ok(f"{base}/health", server)
            workers = h.descendants(server.pid)
            h.say(f"web server {server.pid}, workers {workers}; log {server.log_path}")
            base_us = int(time.time() * 1e6)
            h.say(f"warm-up {WARMUP}s each")
            wrk(base, "bare", api_key, WARMUP, base_us)
            wrk(base, "state", api_key, WARMUP, base_us)
            quiet = h.wait_for_quiet_machine(max_wait=float(os.environ.get("BENCH_QUIET_WAIT", "60")))
            h.say(f"bare endpoint: {CONNECTIONS} connections, {DURATION}s (machine {quiet:.0%} busy before)")
            meter = h.CpuMeter([server.pid, *workers], database_url)
            bare = wrk(base, "bare", api_key, DURATION, base_us)
            bare_cpu = meter.stop(bare["requests"])
            before = settled_history_rows(database_url)
            h.say(f"state reports: {CONNECTIONS} connections, {DURATION}s, rotating over {AGENTS} agents")
            meter = h.CpuMeter([server.pid, *workers], database_url)
            # Timestamps from now on: newer than every warm-up report (which advanced 1 µs per request, far slower
            # than the clock), and never ahead of the server clock (OPSCORE_MAX_CLOCK_SKEW_SECONDS refuses those).
            state = wrk(base, "state", api_key, DURATION, int(time.time() * 1e6))
            cpu = meter.stop(state["requests"])
            after = settled_history_rows(database_url)
            workers = h.descendants(server.pid)
            rss = h.peak_rss_mb(workers)
            alive = server.alive()
        finally:
            server.stop()

    stored = after - before
    unanswered = state["sent"] - state["ok"] - state["non2xx"]
    # Each request carries a unique timestamp, so each stored row is a distinct request: when every request
    # sent is in the history, every 2xx answer certainly is.
    durable = stored == state["sent"] - state["non2xx"] or (state["ok"] <= stored <= state["sent"])
    exact = stored == state["sent"] - state["non2xx"]
    ratio = state["rps"] / bare["rps"] if bare["rps"] else 0.0
    errors = state["non2xx"] + state["socket_errors"]
    web_peak = max(rss) if rss else 0.0

    print()
    print(
        f"== bench-state (commit {commit}; {os.cpu_count()} cores; wrk -t{WRK_THREADS} -c{CONNECTIONS} "
        f"-d{DURATION}s; server alive at end: {alive}) =="
    )
    conf = web_server_config(env)
    print(f"server: granian WSGI, {conf['workers']} workers x {conf['threads']} blocking threads")
    print(line("bare POST", bare))
    print(line("state report", state))
    print(f"state/bare ratio        {ratio:.2f}")
    print(
        f"durability              2xx answers {state['ok']}, history rows added {stored}, sent {state['sent']} "
        f"({unanswered} in flight when wrk stopped) -> "
        + ("every request sent is stored: OK" if exact else ("every 2xx stored: OK" if durable else "MISSING ROWS"))
    )
    print(f"web workers peak RSS    {', '.join(f'{m:.1f}' for m in rss)} MB (VmHWM)")
    for label, c in (("bare", bare_cpu), ("state", cpu)):
        print(
            f"CPU per request ({label:5}) web {c['server_us_per_request']} us, Postgres {c['postgres_us_per_request']}"
            f" us, wrk {c['wrk_us_per_request']} us; other processes on the machine: {c['other_load_cores']} cores"
        )
    checks = [
        ("state reports req/s", f">= {TARGETS['rps']:.0f}", f"{state['rps']:.0f}", state["rps"] >= TARGETS["rps"]),
        (
            "p99 latency",
            f"<= {TARGETS['p99_ms']:.0f} ms",
            f"{state['p99_us'] / 1000:.1f} ms",
            state["p99_us"] / 1000 <= TARGETS["p99_ms"],
        ),
        ("errors (non-2xx + socket)", "0", str(errors), errors == 0),
        ("state/bare ratio", f">= {TARGETS['ratio']}", f"{ratio:.2f}", ratio >= TARGETS["ratio"]),
        ("every 2xx in the database", "yes", "yes" if durable else "no", durable),
        (
            "web worker peak RSS",
            f"<= {TARGETS['web_rss_mb']:.0f} MB",
            f"{web_peak:.1f} MB",
            0 < web_peak <= TARGETS["web_rss_mb"],
        ),
    ]
    print()
    print(f"{'figure':<28} {'target':<12} {'measured':<12} result")
    for name, target, measured, passed in checks:
        print(f"{name:<28} {target:<12} {measured:<12} {'PASS' if passed else 'FAIL'}")
    h.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (h.RESULTS_DIR / "bench_state.json").write_text(
        json.dumps(
            {
                "commit": commit,
                "bare": bare,
                "state": state,
                "ratio": ratio,
                "stored": stored,
                "durable": durable,
                "web_peak_rss_mb": rss,
            },
            indent=2,
        )
    )
    return 0 if all(passed for *_, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
