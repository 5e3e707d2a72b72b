"""Production web server settings used by `make run` and the benchmarks (override with GUNICORN_* env)."""

import multiprocessing
import os

bind = os.environ.get("OPSCORE_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("WEB_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", 4))
keepalive = 75
backlog = 2048
timeout = 30
graceful_timeout = 10
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
