"""Test helpers that run real processes: a Celery worker on the real Redis broker and test database.

Used through the ``celery_worker`` fixture in the root conftest. Tests that use it need committed data
(``@pytest.mark.django_db(transaction=True)``), since the worker is another process.
"""

from __future__ import annotations

import os
import signal
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


def child_pids(pid: int) -> list[int]:
    """Pids of the direct children of ``pid`` (read from /proc; empty where there is no /proc)."""
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def test_process_env(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process started by a test: development mode with this test run's secrets (passed
    explicitly), the test database, unbuffered output."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "opscore_project.settings",
            "DEBUG": "true",
            "SECRET_KEY": settings.SECRET_KEY,
            "OPSCORE_API_KEY": settings.OPSCORE_API_KEY,
            "DATABASE_URL": current_database_url(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    return env


class CeleryWorker:
    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pool_children(self) -> list[int]:
        """Pids of the worker's pool processes (prefork), from /proc."""
        return child_pids(self.process.pid)

    def kill(self) -> None:
        """SIGKILL the worker's main process and its pool processes at once, as a crash of its host would."""
        for pid in [self.process.pid, *self.pool_children()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)

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
    extra_env: dict[str, str] | None = None,
    *,
    concurrency: int = 4,
    beat: bool = False,
    ready_timeout: float = 60,
    pool: str = "threads",
    name: str = "test",
    purge: bool = True,
) -> Iterator[CeleryWorker]:
    """Start ``celery worker`` against the test database; wait until it is ready; stop it afterwards.

    Pending messages left by earlier tests are purged first (unless ``purge=False``: a worker restarted in the
    middle of a test must find the messages its predecessor left) so a test only sees its own tasks. ``pool`` is
    Celery's pool (``threads`` or ``prefork``); give workers running side by side distinct ``name``s.
    """
    from opscore_project.celery import app

    if purge:
        with app.connection_for_write() as conn:
            app.control.purge(connection=conn)
    env = test_process_env(extra_env)
    log_file = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)
    args = [
        sys.executable, "-m", "celery", "-A", "opscore_project", "worker", "--loglevel", "INFO",
        "--pool", pool, "--concurrency", str(concurrency), "--hostname", f"{name}-{os.getpid()}@%h",
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


class LoggedProcess:
    """A process started by a test (its own process group), with its output in a temporary log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log_file = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)
        self.name = name
        self.log_path = Path(log_file.name)
        self.process = subprocess.Popen(
            args, cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


@contextmanager
def running_web_server(extra_env: dict[str, str] | None = None, *, workers: int = 2) -> Iterator[str]:
    """Run the production web server (granian, ``opscore_project/webserver.py``) with ``workers`` processes against
    the test database; yields its base URL once ``/health`` answers; stops it afterwards."""
    import urllib.error
    import urllib.request

    from opscore_project.webserver import web_server_command

    port = free_port()
    env = test_process_env({"OPSCORE_BIND": f"127.0.0.1:{port}", "WEB_WORKERS": str(workers), **(extra_env or {})})
    server = LoggedProcess("web", web_server_command(env), env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"web server exited with {server.process.returncode}:\n{server.log()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"web server not up after 60s:\n{server.log()[-4000:]}")
            time.sleep(0.2)
        yield url
    finally:
        server.stop()


@contextmanager
def running_celery_beat(extra_env: dict[str, str] | None = None) -> Iterator[LoggedProcess]:
    """Run ``celery beat`` (the database scheduler, django-celery-beat) against the test database."""
    args = [sys.executable, "-m", "celery", "-A", "opscore_project", "beat", "--loglevel", "INFO",
            "--schedule", str(Path(tempfile.mkdtemp()) / "beat-schedule")]  # fmt: skip
    beat = LoggedProcess("celery-beat", args, test_process_env(extra_env))
    try:
        yield beat
    finally:
        beat.stop()


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
