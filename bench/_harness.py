"""Shared pieces of the benchmarks: a private database, the production web server, wrk, memory figures.

Every benchmark runs Ops-Core exactly as `make run` does (granian via opscore_project/webserver.py,
DEBUG off, secrets from the environment) against its own database and Redis db, on a free loopback port,
and removes what it created when it ends.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))  # the benchmarks share the project's own web server command
BENCH_DIR = BASE_DIR / "bench"
RESULTS_DIR = BENCH_DIR / "results"
PYTHON = sys.executable
BIN_DIR = Path(PYTHON).parent
PG_SERVER_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=BASE_DIR, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=BASE_DIR, capture_output=True, text=True).stdout
        return commit + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ensure_wrk() -> str:
    """Return the path of wrk; install it when running as root with apt, else explain and exit."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("wrk is missing: installing it with apt-get (Debian package 'wrk')")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        path = shutil.which("wrk")
        if path:
            return path
    print(
        "wrk (the HTTP load generator) is not installed. Install it and run again:\n"
        "    sudo apt-get install wrk        # Debian/Ubuntu\n"
        "    brew install wrk                # macOS",
        file=sys.stderr,
    )
    sys.exit(2)


# --- database ------------------------------------------------------------------------------------------------
def _pg_connect(dbname: str = "postgres"):
    import psycopg

    return psycopg.connect(f"{PG_SERVER_URL}/{dbname}", autocommit=True)


@contextmanager
def private_database(name: str) -> Iterator[str]:
    """Create an empty Postgres database ``name`` (dropping a leftover one) and drop it afterwards."""
    try:
        with _pg_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - explain any connection failure the same way
        print(f"Cannot reach Postgres at {PG_SERVER_URL} ({exc}). Start Postgres or set BENCH_POSTGRES_URL.")
        sys.exit(2)
    try:
        yield f"{PG_SERVER_URL}/{name}"
    finally:
        if os.environ.get("BENCH_KEEP_DB") != "1":
            with _pg_connect() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sql_value(database_url: str, sql: str, params: tuple = ()) -> object:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


# --- Ops-Core processes --------------------------------------------------------------------------------------
def production_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    """The environment `make run` gives Ops-Core, with fresh real secrets and this run's private backends."""
    env = dict(os.environ)
    for key in ("DEBUG", "OPSCORE_TESTING", "DJANGO_SETTINGS_MODULE"):
        env.pop(key, None)
    env.update(
        DJANGO_SETTINGS_MODULE="opscore_project.settings",
        PYTHONUNBUFFERED="1",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(40),
        OPSCORE_API_KEY=secrets.token_urlsafe(24),
        OPSCORE_WEBHOOK_SECRET=secrets.token_urlsafe(24),
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        OPSCORE_BIND=f"127.0.0.1:{port}",
        OPSCORE_VAR_DIR=str(RESULTS_DIR / "var"),
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, input=stdin, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def run_python(env: dict[str, str], code: str) -> str:
    """Run Django code in a fresh process with this environment (django.setup() done)."""
    prelude = "import django\ndjango.setup()\n"
    result = subprocess.run([PYTHON, "-c", prelude + code], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"helper failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


class Process:
    """A started child process in its own session, with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = RESULTS_DIR / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            args, cwd=BASE_DIR, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def web_server_args(env: dict[str, str]) -> list[str]:
    """Exactly what opscore_project/launcher.py (`make run`) starts for the web server."""
    from opscore_project.webserver import web_server_command

    return web_server_command(env)


def wait_http_ok(url: str, process: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited early:\n{process.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f}s:\n{process.tail()}")


# --- memory --------------------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return sorted(found)


def descendants(pid: int) -> list[int]:
    result = []
    for child in _children(pid):
        result.append(child)
        result.extend(descendants(child))
    return result


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB (empty if it is gone)."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


def peak_rss_mb(pids: list[int]) -> list[float]:
    return [round(memory_kib(pid).get("VmHWM", 0) / 1024, 1) for pid in pids]


# --- wrk -----------------------------------------------------------------------------------------------------
def run_wrk(
    url: str,
    script: Path,
    *,
    connections: int,
    duration: int,
    threads: int,
    script_args: list[str],
    timeout_s: int = 5,
) -> dict:
    """Run wrk with a Lua script whose done() prints one ``WRKJSON {...}`` line; return that dict."""
    args = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(script),
        url,
        "--",
        *script_args,
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60)
    for line in result.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON ") :])
    raise RuntimeError(f"wrk printed no figures (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")


def postgres_url_parts(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed._replace(path="").geturl(), parsed.path.lstrip("/")


# --- other load on the machine -------------------------------------------------------------------------------
def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]), idle


def busy_fraction(seconds: float = 1.0) -> float:
    """Share of all cores busy over ``seconds`` (0..1)."""
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet_machine(limit: float = 0.15, max_wait: float | None = None) -> float:
    """Wait until other processes leave the cores mostly idle (the benchmarks share 2 cores with them).

    Returns the last busy fraction seen; gives up after BENCH_QUIET_WAIT seconds (default 180).
    """
    max_wait = float(os.environ.get("BENCH_QUIET_WAIT", "180")) if max_wait is None else max_wait
    deadline = time.monotonic() + max_wait
    busy = busy_fraction()
    announced = False
    while busy > limit and time.monotonic() < deadline:
        if not announced:
            say(f"waiting for the machine to be quiet ({busy:.0%} busy; up to {max_wait:.0f}s)")
            announced = True
        busy = busy_fraction(2.0)
    return busy


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (those still alive)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_backend_pids(database_url: str) -> list[int]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [row[0] for row in rows]


class CpuMeter:
    """CPU used during a phase: by our server processes, their Postgres backends, wrk, and everything else."""

    def __init__(self, server_pids: list[int], database_url: str) -> None:
        import resource

        self._resource = resource
        self.server_pids = server_pids
        self.pg_pids = postgres_backend_pids(database_url)
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float, float, float]:
        children = self._resource.getrusage(self._resource.RUSAGE_CHILDREN)
        total, idle = _cpu_times()
        tick = os.sysconf("SC_CLK_TCK")
        return (
            time.monotonic(),
            process_cpu_seconds(self.server_pids),
            process_cpu_seconds(self.pg_pids),
            children.ru_utime + children.ru_stime,
            (total - idle) / tick,
        )

    def stop(self, requests: int) -> dict[str, float]:
        end = self._sample()
        wall, server, pg, wrk, busy = (b - a for a, b in zip(self._start, end, strict=True))
        per = 1e6 / max(1, requests)
        return {
            "server_us_per_request": round(server * per),
            "postgres_us_per_request": round(pg * per),
            "wrk_us_per_request": round(wrk * per),
            "other_load_cores": round(max(0.0, busy - server - pg - wrk) / wall, 2),
        }
