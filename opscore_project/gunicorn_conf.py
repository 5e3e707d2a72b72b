"""Production web server settings used by `make run` and the benchmarks (override with WEB_WORKERS/WEB_THREADS).

gthread keeps client connections alive between requests; sync workers (a TCP handshake per request) cost no less
CPU per request and had a worse p99. Shapes from 2x2 to 6x1 measured within noise of each other on 2 cores, except
1 thread per worker (worse: no overlap of the database wait). See docs/performance.md.
"""

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
