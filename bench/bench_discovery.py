"""Discovery benchmark: one polling sync of 10,000 agents listed by a real HTTP server.

    python bench/bench_discovery.py [--agents 10000] [--database opscore_bench]

Sets Django up itself against a throwaway Postgres database (``opscore_bench`` on the server of DATABASE_URL,
created and migrated if missing, its agents wiped first), serves ``GET /v1/agents`` from an http.server thread on
a free port, and times the whole sync (HTTP fetch + parse + bulk upsert + events + SyncRun) for: the first import,
an unchanged re-sync, and a re-sync with churn (10 % changed, 1 % gone, 1 % new). Targets: first import <= 2 s,
unchanged re-sync <= 1 s, and a query count independent of the number of agents.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_IMPORT_TARGET = 2.0
RESYNC_TARGET = 1.0


def bench_database_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opscore")
    parts = urlsplit(base)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit("bench_discovery needs PostgreSQL (DATABASE_URL=postgres://...)")
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


class Listing:
    """The agents the fake AgentKit lists; the JSON body is pre-rendered (AgentKit's speed is not measured)."""

    def __init__(self) -> None:
        self.body = b""

    def set(self, agents: list[dict]) -> None:
        self.body = json.dumps({"status": "success", "message": "ok", "data": agents}).encode()


def serve(listing: Listing) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path != "/v1/agents":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(listing.body)))
            self.end_headers()
            self.wfile.write(listing.body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def fleet(count: int, *, version: str = "1.0", start: int = 0) -> list[dict]:
    return [
        {
            "agentId": f"bench-agent-{i:06d}",
            "agentName": f"Bench agent {i}",
            "version": version,
            "capabilities": ["summarise", "translate"] if i % 2 else ["classify"],
            "contactEndpoint": f"http://10.0.{i // 250}.{i % 250}:8001/",
            "registrationTime": "2026-11-24T09:00:00Z",
            "metadata": {"rack": i % 40},
        }
        for i in range(start, start + count)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--database", default="opscore_bench")
    args = parser.parse_args()

    url = bench_database_url(args.database)
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    # Production mode (DEBUG=false: no query log kept); throwaway secrets for this process only.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    os.environ.setdefault("OPSCORE_API_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opscore_project.settings")

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from agentkit_bridge.models import SyncRun
    from agentkit_bridge.services import sync_agents_run
    from lifecycle.models import Agent
    from opscore_project.observability.models import OperationEvent

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:  # a clean slate without dead rows left from the previous run
        tables = [model._meta.db_table for model in (Agent, SyncRun, OperationEvent)]
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")

    listing = Listing()
    server = serve(listing)
    settings.AGENTKIT_API_URL = f"http://127.0.0.1:{server.server_address[1]}"
    n = args.agents

    def timed(label: str) -> tuple[float, int, SyncRun]:
        queries = []

        def count(execute, sql, params, many, context):
            queries.append(1)  # a counter, not CaptureQueriesContext: that one formats every 10,000-id query
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            started = time.perf_counter()
            run = sync_agents_run()
            seconds = time.perf_counter() - started
        assert run.outcome == "success", (run.outcome, run.error)
        print(
            f"{label:<28} {seconds:7.3f} s  {len(queries):3d} queries  "
            f"listed={run.listed} added={run.added} updated={run.updated} "
            f"deregistered={run.deregistered} reregistered={run.reregistered}"
        )
        return seconds, len(queries), run

    print(f"Discovery benchmark: {n} agents listed by a local HTTP server, database {args.database}")
    listing.set(fleet(n))
    first, first_queries, _ = timed("first import")
    unchanged, unchanged_queries, _ = timed("unchanged re-sync")

    churned = fleet(n)
    for item in churned[: n // 10]:
        item["version"] = "2.0"
    churned = churned[: n - n // 100] + fleet(n // 100, start=n)
    listing.set(churned)
    timed("re-sync, 10% changed/1% churn")
    server.shutdown()

    assert Agent.objects.count() == n + n // 100
    ok = first <= FIRST_IMPORT_TARGET and unchanged <= RESYNC_TARGET
    print(
        f"targets: first import <= {FIRST_IMPORT_TARGET:.0f} s ({'ok' if first <= FIRST_IMPORT_TARGET else 'MISSED'}), "
        f"unchanged re-sync <= {RESYNC_TARGET:.0f} s ({'ok' if unchanged <= RESYNC_TARGET else 'MISSED'}); "
        f"queries {first_queries} / {unchanged_queries} (constant in the agent count)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
