"""The production web server command, shared by `make run`, `make web`, the container and the benchmarks.

Granian (a Rust HTTP server running the WSGI app) rather than gunicorn: measured on the state-report benchmark
(2 cores, 64 connections) it spends ~200 µs less CPU per request than gunicorn's gthread workers, and cut p99
latency by more than half (docs/performance.md). Keep-alive is on; the access log is our own JSON request log.

Environment: ``OPSCORE_BIND`` (``0.0.0.0:8080``), ``WEB_WORKERS`` (one per core), ``WEB_THREADS`` (blocking threads
per worker that run Django; more than one overlaps the database wait).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def web_server_config(env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) if env is None else env
    host, _, port = env.get("OPSCORE_BIND", "0.0.0.0:8080").rpartition(":")
    return {
        "host": host.strip("[]") or "0.0.0.0",
        "port": port or "8080",
        "workers": env.get("WEB_WORKERS") or str(os.cpu_count() or 1),
        "threads": env.get("WEB_THREADS") or "4",
    }


def web_server_command(env: dict[str, str] | None = None) -> list[str]:
    config = web_server_config(env)
    granian = Path(sys.executable).parent / "granian"
    return [
        str(granian),
        "--interface", "wsgi",
        "--host", config["host"],
        "--port", config["port"],
        "--workers", config["workers"],
        "--blocking-threads", config["threads"],
        "--backlog", "2048",
        "--http", "1",
        "--workers-kill-timeout", "10",
        "--log-level", "warning",
        "opscore_project.wsgi:application",
    ]  # fmt: skip


if __name__ == "__main__":
    os.execv(web_server_command()[0], web_server_command())
