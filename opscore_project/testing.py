"""Test helpers that run real processes: a Celery worker on the real Redis broker and test database.

Used through the ``celery_worker`` fixture in the root conftest. Tests that use it need committed data
(``@pytest.mark.django_db(transaction=True)``), since the worker is another process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def current_database_url() -> str:
    """The URL of the database this test run uses (pytest-django's test_… database)."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{s['NAME']}"


class CeleryWorker:
    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@contextmanager
def running_celery_worker(
    extra_env: dict[str, str] | None = None, *, concurrency: int = 4, beat: bool = False, ready_timeout: float = 60
) -> Iterator[CeleryWorker]:
    """Start ``celery worker`` against the test database; wait until it is ready; stop it afterwards.

    Pending messages left by earlier tests are purged first so a test only sees its own tasks.
    """
    from opscore_project.celery import app

    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "opscore_project.settings",
            # Development mode, so the worker accepts this test run's development secrets (passed explicitly).
            "DEBUG": "true",
            "SECRET_KEY": settings.SECRET_KEY,
            "OPSCORE_API_KEY": settings.OPSCORE_API_KEY,
            "DATABASE_URL": current_database_url(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    log_file = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)
    args = [
        sys.executable, "-m", "celery", "-A", "opscore_project", "worker", "--loglevel", "INFO",
        "--pool", "threads", "--concurrency", str(concurrency), "--hostname", f"test-{os.getpid()}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    if beat:
        args += ["--beat", "--schedule", str(Path(tempfile.mkdtemp()) / "beat-schedule")]
    process = subprocess.Popen(args, cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    worker = CeleryWorker(process, Path(log_file.name))
    try:
        deadline = time.monotonic() + ready_timeout
        while " ready." not in worker.log():
            if process.poll() is not None:
                raise RuntimeError(f"Celery worker exited with {process.returncode}:\n{worker.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Celery worker not ready after {ready_timeout}s:\n{worker.log()[-4000:]}")
            time.sleep(0.1)
        yield worker
    finally:
        worker.stop()


def wait_until(predicate, *, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
