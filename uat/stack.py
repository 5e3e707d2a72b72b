"""Where the acceptance scenarios run: a stack that is already running, or one the UAT starts for itself.

- ``OPSCORE_URL`` set: that Ops-Core (with ``OPSCORE_API_KEY``, ``OPSCORE_ADMIN_USER``/``OPSCORE_ADMIN_PASSWORD``
  and its AgentKit at ``AGENTKIT_API_URL``).
- otherwise, the one ``make run`` started, if it answers on 127.0.0.1:8080 (key and admin password from ``var/``);
- otherwise (or with ``UAT_STACK=own``): a private stack started exactly as ``make run`` does — granian web server,
  Celery worker and beat, ``DEBUG=false`` and fresh secrets — on free ports, against a database created for the run
  (and dropped after) and the Redis db ``UAT_REDIS_URL`` (default ``redis://127.0.0.1:6379/13``), with the mock
  AgentKit running inside the UAT so the "AgentKit down" scenario can stop it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
MAKE_RUN_URL = "http://127.0.0.1:8080"


@dataclass
class Target:
    url: str
    api_key: str
    agentkit_url: str
    admin_user: str
    admin_password: str
    description: str
    mock: Any = None  # the in-process mock AgentKit when the UAT runs its own stack
    logs: list[Path] = field(default_factory=list)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _operator_token() -> str:
    """The operator token `make run` created (the scenarios need more than the agents' key allows)."""
    path = VAR / "operator-token.txt"
    return path.read_text().strip() if path.exists() else ""


def _local_env() -> dict[str, str]:
    path = VAR / "local.env"
    if not path.exists():
        return {}
    pairs = (line.partition("=") for line in path.read_text().splitlines() if not line.startswith("#"))
    return {key.strip(): value.strip() for key, _, value in pairs if key}


@contextmanager
def target() -> Iterator[Target]:
    env = os.environ
    if env.get("OPSCORE_URL"):
        yield Target(
            url=env["OPSCORE_URL"].rstrip("/"),
            api_key=env.get("OPSCORE_API_KEY", ""),
            agentkit_url=env.get("AGENTKIT_API_URL", "http://127.0.0.1:8000"),
            admin_user=env.get("OPSCORE_ADMIN_USER", "admin"),
            admin_password=env.get("OPSCORE_ADMIN_PASSWORD", ""),
            description=f"the stack at {env['OPSCORE_URL']}",
        )
        return
    password_file = VAR / "admin-password.txt"
    if env.get("UAT_STACK") != "own" and _answers(MAKE_RUN_URL) and password_file.exists():
        yield Target(
            url=MAKE_RUN_URL,
            api_key=env.get("OPSCORE_API_KEY") or _operator_token() or _local_env().get("OPSCORE_API_KEY", ""),
            agentkit_url=env.get("AGENTKIT_API_URL", "http://127.0.0.1:8000"),
            admin_user="admin",
            admin_password=password_file.read_text().strip(),
            description="the stack `make run` started",
        )
        return
    with own_stack() as started:
        yield started


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _private_database() -> Iterator[str]:
    import psycopg

    server = os.environ.get("UAT_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    name = f"opscore_uat_{os.getpid()}"
    admin_url = urlparse(server)._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlparse(server)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def own_stack() -> Iterator[Target]:
    from mock_agentkit.testing import start_mock_agentkit
    from opscore_project.webserver import web_server_command

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    api_key, webhook_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    admin_password = secrets.token_urlsafe(12)
    logs_dir = VAR / "uat" / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        database_url = stack.enter_context(_private_database())
        mock = start_mock_agentkit(opscore_url=url, api_key=api_key, webhook_secret=webhook_secret)
        stack.callback(mock.stop)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OPSCORE_", "AGENTKIT_"))},
            "DJANGO_SETTINGS_MODULE": "opscore_project.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "OPSCORE_API_KEY": api_key,
            "OPSCORE_WEBHOOK_SECRET": webhook_secret,
            "DATABASE_URL": database_url,
            "REDIS_URL": os.environ.get("UAT_REDIS_URL", "redis://127.0.0.1:6379/13"),
            "AGENTKIT_API_URL": mock.url,
            # Quick verdicts: one retry of a dispatch AgentKit cannot take, a short backoff.
            "AGENTKIT_DISPATCH_MAX_RETRIES": "1",
            "AGENTKIT_DISPATCH_BACKOFF_SECONDS": "0.2",
            "OPSCORE_BIND": f"127.0.0.1:{port}",
            "WEB_WORKERS": "1",
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
        for args in (
            ("migrate", "--noinput", "-v", "0"),
            ("opscore_setup_schedules",),
            # Messages a previous run left in the broker would only point at rows of a dropped database.
            ("shell", "-c", "from opscore_project.celery import app; app.control.purge()"),
            ("shell", "-c", _CREATE_ADMIN),
        ):
            subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=dict(env, UAT_ADMIN_PASSWORD=admin_password),
                check=True,
                capture_output=True,
            )
        operator_token = subprocess.run(
            [sys.executable, "manage.py", "opscore_token", "create", "--scope", "operator", "--name", "uat"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        celery = [sys.executable, "-m", "celery", "-A", "opscore_project"]
        logs = []
        for name, args in (
            ("web", web_server_command(env)),
            ("worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2", "--without-gossip"]),
            ("beat", [*celery, "beat", "--loglevel", "INFO", "--schedule", str(logs_dir / "celerybeat-schedule")]),
        ):
            log = logs_dir / f"{name}.log"
            logs.append(log)
            handle = log.open("w")
            process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
            stack.callback(_stop, process, handle)
        deadline = time.monotonic() + 60
        while not _answers(url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the UAT's Ops-Core did not answer at {url}; see {logs_dir}")
            time.sleep(0.3)
        yield Target(
            url=url,
            api_key=operator_token,
            agentkit_url=mock.url,
            admin_user="uat-operator",
            admin_password=admin_password,
            description=f"its own stack started like `make run` (Ops-Core {url}, mock AgentKit {mock.url})",
            mock=mock,
            logs=logs,
        )


_CREATE_ADMIN = (
    "import os\n"
    "from django.contrib.auth import get_user_model\n"
    "get_user_model().objects.create_superuser('uat-operator', 'uat@localhost', os.environ['UAT_ADMIN_PASSWORD'])\n"
)


def _stop(process: subprocess.Popen, handle) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    handle.close()
