"""The engine's fault suite (docs/engine-faults.md): real Postgres, Redis, Celery workers and the mock AgentKit.

The short version runs in ``make test``: a burst through two prefork workers whose pool processes and whole
workers are SIGKILLed, the heartbeat ``idle`` between dispatch and ``active``, and scale-out (two web processes,
two workers, two beats on one database). ``make faults`` (``FAULTS_FULL=1``) runs them with 100 kills, and adds
the service outages: Redis stopped 30 s, Postgres restarted, AgentKit down 60 s. Those stop and start the
machine's own services (``redis-cli shutdown`` / ``redis-server``, ``pg_ctlcluster``) and always restore them.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from agentkit_bridge.models import DispatchAttempt, DispatchOutbox, DispatchOutcomeKind, SyncOutcome, SyncRun
from lifecycle.models import Agent
from lifecycle.services import agent_register
from mock_agentkit.agents import simulated_result
from mock_agentkit.testing import AgentSpec, MockHandle, running_mock_agentkit
from opscore_project.testing import (
    free_port,
    running_celery_beat,
    running_celery_worker,
    running_web_server,
    wait_until,
)
from workflows.models import TASK_RUN_IN_FLIGHT, TaskRun, WorkflowSchedule, WorkflowSession
from workflows.services import workflow_schedule_save

FULL = os.environ.get("FAULTS_FULL") == "1"
full_only = pytest.mark.skipif(not FULL, reason="service outages run only in the full fault suite (make faults)")

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LEASE_SECONDS = 2.0
CAPABILITIES = ("summarise", "translate", "classify")
WORKER_ENV = {
    "OPSCORE_DISPATCH_LEASE_SECONDS": str(LEASE_SECONDS),
    "OPSCORE_ENGINE_TICK_SECONDS": "0.2",
    "OPSCORE_WORKFLOW_SWEEP_SECONDS": "1",
    "AGENTKIT_DISPATCH_BACKOFF_SECONDS": "0.2",
    "AGENTKIT_CONNECT_TIMEOUT": "0.5",
    "AGENTKIT_READ_TIMEOUT": "2",
}
TERMINAL = ("completed", "failed", "cancelled")


# --- helpers -------------------------------------------------------------------------------------------------


class Ops:
    """The live Ops-Core over HTTP, as clients and agents use it."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {api_key}"

    def define(self, definition: dict) -> None:
        response = self.http.post(f"{self.base_url}/v1/opscore/workflows", json=definition, timeout=30)
        assert response.status_code in (200, 201), response.text

    def run(self, workflow_id: str, payload: dict | None = None) -> str:
        response = requests.post(  # one connection per call: callers run in parallel threads
            f"{self.base_url}/v1/opscore/workflows/{workflow_id}/run",
            json={"initialPayload": payload or {}},
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        return response.json()["sessionId"]

    def report(self, agent_id: str, state: str, details: dict | None = None) -> int:
        """A state report as the agent sends it (timestamped now)."""
        body = {"agentId": agent_id, "timestamp": timezone.now().isoformat(), "state": state, "details": details or {}}
        return self.http.post(f"{self.base_url}/v1/opscore/agent/{agent_id}/state", json=body, timeout=10).status_code


def chain(workflow_id: str, **policy) -> dict:
    """summarise → translate → classify, each step fed the text of the session's payload."""
    tasks = [
        {
            "taskId": f"s{index + 1}",
            "agentCapability": capability,
            "parameters": {"text": "{{ payload.text }}"},
            "nextTaskId": f"s{index + 2}" if index + 1 < len(CAPABILITIES) else None,
            **policy,
        }
        for index, capability in enumerate(CAPABILITIES)
    ]
    return {"id": workflow_id, "version": "1.0", "tasks": tasks}


def register_in_opscore(mock: MockHandle) -> None:
    """What the registration webhook / polling sync would store for every simulated agent."""
    for info in mock.agents:
        agent_register(
            agent_id=info.agent_id, name=info.name, version="1.0", capabilities=list(info.capabilities),
            contact_endpoint=info.contact_endpoint, metadata={}, source="webhook",
        )  # fmt: skip


def sessions_ended(session_ids: list[str], timeout: float) -> dict[str, str]:
    """Wait until every session is completed/failed/cancelled; returns id → status. Fails naming the stuck ones."""

    def statuses() -> dict[str, str]:
        return {
            str(pk): status
            for pk, status in WorkflowSession.objects.filter(pk__in=session_ids).values_list("pk", "status")
        }

    def all_ended() -> dict[str, str] | None:
        found = statuses()
        return found if len(found) == len(session_ids) and all(v in TERMINAL for v in found.values()) else None

    try:
        return wait_until(all_ended, timeout=timeout, interval=0.5, message="every session to end")
    except AssertionError:
        stuck = {k: v for k, v in statuses().items() if v not in TERMINAL}
        runs = list(
            TaskRun.objects.filter(session_id__in=list(stuck)[:5]).values(
                "session_id", "task_id", "status", "dispatch_ref"
            )
        )
        raise AssertionError(
            f"{len(stuck)} session(s) stuck, e.g. {list(stuck.items())[:5]}; their runs: {runs}"
        ) from None


@dataclass
class Figures:
    """What one scenario measured (printed, and recorded in docs/engine-faults.md)."""

    name: str
    sessions: int = 0
    runs: int = 0
    kills: Counter = field(default_factory=Counter)
    duplicate_posts: int = 0
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)

    def print(self) -> None:
        print(
            f"\n[faults] {self.name}: {self.sessions} sessions, {self.runs} task runs, kills {dict(self.kills)}, "
            f"duplicate POSTs {self.duplicate_posts}, {self.seconds:.1f} s, {self.notes}"
        )


def check_outcome(session_ids: list[str], mock: MockHandle, figures: Figures) -> None:
    """The invariants of every scenario, over what Ops-Core stored and what the mock AgentKit saw.

    - every session is ``completed``, each of its tasks with exactly one completed run;
    - each completed run's result is the one its own agent computed for that run's parameters (a second copy of
      a task, or a heartbeat, completing some other run would show up here as a foreign result);
    - no POST of a dispatch later than the lease after that dispatch stopped being current (re-routed or ended);
    - agents hold no finished run, and the outbox holds nothing for finished runs.
    """
    sessions = {str(s.pk): s for s in WorkflowSession.objects.filter(pk__in=session_ids)}
    runs = list(TaskRun.objects.filter(session_id__in=session_ids).select_related("agent"))
    figures.sessions, figures.runs = len(sessions), len(runs)
    assert Counter(s.status for s in sessions.values()) == Counter({"completed": len(session_ids)})
    completed_per_task = Counter((str(r.session_id), r.task_id) for r in runs if r.status == "completed")
    for session_id in sessions:
        for task_id in ("s1", "s2", "s3"):
            assert completed_per_task[(session_id, task_id)] == 1, (session_id, task_id)
    for run in runs:
        if run.status == "completed":
            assert run.result == simulated_result(run.capability, run.parameters, run.agent.name), run.pk

    posts = requests.get(f"{mock.url}/mock/runs", timeout=10).json()["runsByTask"]
    by_id = {str(r.pk): r for r in runs}
    figures.duplicate_posts = sum(max(0, posts.get(str(r.pk), 0) - r.dispatch_count) for r in runs)
    tolerance = timedelta(seconds=LEASE_SECONDS + 1)
    stale: list[tuple[str, str]] = []
    for info in mock.agents:
        for message in mock.received_tasks(info.agent_id):
            run = by_id.get(str(message.get("opscore_task_id")))
            if run is None:
                continue
            posted_at = datetime.fromisoformat(message["timestamp"])
            if run.agent is not None and run.agent.agent_id != info.agent_id and run.dispatched_at:
                if posted_at > run.dispatched_at + tolerance:  # sent to a former agent after the run was re-routed
                    stale.append((str(run.pk), info.name))
            if run.ended_at and posted_at > run.ended_at + tolerance:
                stale.append((str(run.pk), info.name))
    assert stale == [], f"dispatches POSTed after they stopped being current: {stale[:5]}"
    finished = [str(r.pk) for r in runs if r.status not in TASK_RUN_IN_FLIGHT]
    assert not Agent.objects.filter(assigned_task__in=finished).exists()
    assert not DispatchOutbox.objects.filter(
        dispatch_ref__in=[r.dispatch_ref for r in runs if str(r.pk) in finished]
    ).exists()


@contextmanager
def workers(mock_url: str, count: int = 2, *, beat: bool = True, extra: dict[str, str] | None = None):
    """``count`` prefork workers, restartable (yields them and ``restart(index)``), and a ``celery beat`` process
    of its own (so the chaos, which kills the workers' children, never kills the beat)."""
    env = {"AGENTKIT_API_URL": mock_url, **WORKER_ENV, **(extra or {})}
    with ExitStack() as stack:
        started = [
            stack.enter_context(running_celery_worker(env, pool="prefork", concurrency=2, name=f"w{i}", purge=i == 0))
            for i in range(count)
        ]
        if beat:
            stack.enter_context(running_celery_beat(env))

        def restart(index: int) -> None:
            started[index] = stack.enter_context(
                running_celery_worker(env, pool="prefork", concurrency=2, name=f"w{index}", purge=False)
            )

        yield started, restart


class Chaos(threading.Thread):
    """SIGKILLs pool processes every ``every`` seconds and, every ``worker_every`` kills, a whole worker (then
    restarts it), until ``budget`` kills were made or it is stopped."""

    def __init__(self, started: list, restart, *, budget: int, worker_every: int, every: float = 0.3) -> None:
        super().__init__(name="chaos", daemon=True)
        self.started, self.restart = started, restart
        self.budget, self.worker_every, self.every = budget, worker_every, every
        self.kills: Counter = Counter()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=120)

    def run(self) -> None:
        rng = random.Random(11)
        try:
            while not self._halt.is_set() and sum(self.kills.values()) < self.budget:
                index = rng.randrange(len(self.started))
                worker = self.started[index]
                total = sum(self.kills.values())
                if self.worker_every and total % self.worker_every == self.worker_every - 1:
                    worker.kill()
                    self.kills["worker"] += 1
                    self.restart(index)
                else:
                    children = worker.pool_children()
                    if children:
                        try:
                            os.kill(rng.choice(children), 9)
                            self.kills["pool child"] += 1
                        except ProcessLookupError:
                            pass
                self._halt.wait(self.every)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.done.set()


def trigger_burst(ops: Ops, workflow_id: str, count: int, tag: str) -> list[str]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(
            pool.map(
                lambda i: ops.run(workflow_id, {"text": f"{tag} session {i} {uuid.uuid4().hex[:8]}"}), range(count)
            )
        )


# --- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture
def ops(live_server, operator_token) -> Ops:
    """Operator calls (definitions, runs) and state reports: an operator token may do both."""
    return Ops(live_server.url, operator_token)


@pytest.fixture
def fleet(live_server, settings):
    """``fleet(n, **mock_options)``: the mock AgentKit with ``n`` agents able to run every step, known to Ops-Core."""
    with ExitStack() as stack:

        def start(n: int, **options) -> MockHandle:
            specs = [AgentSpec(f"agent-{i}", list(CAPABILITIES)) for i in range(n)]
            mock = stack.enter_context(
                running_mock_agentkit(
                    opscore_url=options.pop("opscore_url", live_server.url), api_key=settings.OPSCORE_API_KEY,
                    webhook_secret=None, agents=specs, **options,
                )
            )  # fmt: skip
            settings.AGENTKIT_API_URL = mock.url
            register_in_opscore(mock)
            return mock

        yield start


def install_schedules(settings, *, poll_interval: int) -> None:
    """The periodic tasks `make run` installs (sync, sweep, retention), with a short polling interval."""
    settings.AGENTKIT_POLL_INTERVAL = poll_interval
    settings.OPSCORE_WORKFLOW_SWEEP_SECONDS = 1
    call_command("opscore_setup_schedules", verbosity=0)


# --- (a) kills during a burst --------------------------------------------------------------------------------


def test_a_burst_survives_killed_pool_processes_and_killed_workers(fleet, ops, settings):
    kills, worker_every, per_second = (100, 10, 4) if FULL else (12, 6, 2)
    figures = Figures("kills during a burst")
    mock = fleet(8)
    install_schedules(settings, poll_interval=30)
    ops.define(chain("burst"))
    started_at = time.monotonic()
    with workers(mock.url, extra={"AGENTKIT_POLL_INTERVAL": "30"}) as (started, restart):
        chaos = Chaos(started, restart, budget=kills, worker_every=worker_every, every=0.3 if FULL else 0.5)
        chaos.start()
        session_ids: list[str] = []
        try:
            wave = 0
            while not chaos.done.is_set():  # sessions keep arriving while processes die
                session_ids += trigger_burst(ops, "burst", per_second, f"wave {wave}")
                wave += 1
                chaos.done.wait(1.0)
        finally:
            chaos.stop()
        assert chaos.error is None, chaos.error
        sessions_ended(session_ids, timeout=180 if FULL else 90)
    figures.seconds = time.monotonic() - started_at
    figures.kills = chaos.kills
    check_outcome(session_ids, mock, figures)
    accepted = Counter(
        ref.split(":")[0]
        for ref in DispatchAttempt.objects.filter(outcome=DispatchOutcomeKind.ACCEPTED).values_list(
            "dispatch_ref", flat=True
        )
    )
    figures.notes["accepted attempts beyond dispatches"] = sum(
        max(0, accepted[str(r.pk)] - r.dispatch_count) for r in TaskRun.objects.filter(session_id__in=session_ids)
    )
    figures.print()
    assert chaos.kills["worker"] >= 2 and sum(chaos.kills.values()) >= kills


# --- (b) a heartbeat between dispatch and active -------------------------------------------------------------


def test_a_heartbeat_idle_before_active_completes_nothing_and_the_task_moves_on(fleet, ops, settings):
    mock = fleet(0)
    # AgentKit accepts tasks for this agent (202) and never delivers them: its endpoint does not answer.
    ghost_id = mock.register_agent("ghost", capabilities=["beat"], contact_endpoint=f"http://127.0.0.1:{free_port()}/")
    agent_register(
        agent_id=ghost_id, name="ghost", version="1.0", capabilities=["beat"], contact_endpoint="", metadata={},
        source="webhook",
    )  # fmt: skip
    assert ops.report(ghost_id, "idle") == 202
    ops.define({"id": "hb", "tasks": [{"taskId": "only", "agentCapability": "beat", "startTimeoutSeconds": 4,
                                       "parameters": {"text": "{{ payload.text }}"}}]})  # fmt: skip
    with workers(mock.url, count=1, beat=False):
        session_id = ops.run("hb", {"text": "heartbeat"})
        run = wait_until(
            lambda: TaskRun.objects.filter(session_id=session_id, status="dispatched").first(),
            timeout=20,
            message="the dispatch to the ghost",
        )
        wait_until(
            lambda: DispatchAttempt.objects.filter(dispatch_ref=run.dispatch_ref, outcome="accepted").exists(),
            timeout=20,
            message="the dispatch to the ghost accepted by AgentKit",
        )
        assert run.agent.agent_id == ghost_id
        assert ops.report(ghost_id, "idle") == 202  # a heartbeat: no active came after the dispatch
        time.sleep(1.5)  # several engine ticks
        run.refresh_from_db()
        assert (run.status, run.result) == ("dispatched", None)
        assert WorkflowSession.objects.get(pk=session_id).status != "completed"

        real = mock.add_agent(AgentSpec("real", ["beat"]))
        register_in_opscore(mock)
        wait_until(
            lambda: WorkflowSession.objects.get(pk=session_id).status in TERMINAL, timeout=30, message="session end"
        )
    session = WorkflowSession.objects.get(pk=session_id)
    assert session.status == "completed"
    (done,) = TaskRun.objects.filter(session_id=session_id, status="completed").select_related("agent")
    assert done.agent.agent_id == real.agent_id
    assert done.result == simulated_result("beat", {"text": "heartbeat"}, "real")
    ghost = Agent.objects.get(agent_id=ghost_id)
    assert ghost.delivery_failures == 1 and ghost.assigned_task == ""
    body = ops.http.get(f"{ops.base_url}/v1/opscore/agents/{ghost_id}", timeout=10).json()
    assert body.get("deliveryFailures", body.get("data", {}).get("deliveryFailures")) == 1


# --- (c) scale-out -------------------------------------------------------------------------------------------


def test_two_web_processes_two_workers_two_beats_on_one_database(fleet, settings, operator_token):
    poll, tick = 2, 2
    install_schedules(settings, poll_interval=poll)
    env = {"AGENTKIT_POLL_INTERVAL": str(poll), **WORKER_ENV}
    with ExitStack() as stack:
        web_url = stack.enter_context(running_web_server({"OPSCORE_API_KEY": settings.OPSCORE_API_KEY}, workers=2))
        mock = fleet(8, opscore_url=web_url)
        ops = Ops(web_url, operator_token)
        ops.define(chain("scale"))
        ops.define({"id": "ticked", "tasks": [{"taskId": "s1", "agentCapability": "summarise",
                                               "parameters": {"text": "tick"}}]})  # fmt: skip
        schedule = workflow_schedule_save(
            schedule=WorkflowSchedule(
                name="every tick", workflow_id="ticked", interval_seconds=tick, allow_overlap=True
            )
        )
        worker_env = {"AGENTKIT_API_URL": mock.url, **env}
        for index in range(2):
            stack.enter_context(
                running_celery_worker(worker_env, pool="prefork", concurrency=2, name=f"s{index}", purge=index == 0)
            )
        for _ in range(2):
            stack.enter_context(running_celery_beat(worker_env))
        window_start = timezone.now()
        burst_started = time.monotonic()
        session_ids = trigger_burst(ops, "scale", 40, "scale")
        sessions_ended(session_ids, timeout=90)
        burst_seconds = time.monotonic() - burst_started
        time.sleep(10)  # five more intervals with nothing else going on
        window_end = timezone.now()
    figures = Figures("scale-out", seconds=burst_seconds)
    check_outcome(session_ids, mock, figures)

    runs = list(TaskRun.objects.filter(session_id__in=session_ids))
    posts = requests.get(f"{mock.url}/mock/runs", timeout=10).json()["runsByTask"]
    accepted = Counter(
        ref.split(":")[0]
        for ref in DispatchAttempt.objects.filter(outcome=DispatchOutcomeKind.ACCEPTED).values_list(
            "dispatch_ref", flat=True
        )
    )
    assert {r.dispatch_count for r in runs} == {1}
    assert [str(r.pk) for r in runs if accepted[str(r.pk)] != 1 or posts.get(str(r.pk)) != 1] == []

    def gaps(times: list[datetime]) -> list[float]:
        return [round((b - a).total_seconds(), 2) for a, b in zip(times, times[1:], strict=False)]

    syncs = list(
        SyncRun.objects.filter(started_at__gte=window_start + timedelta(seconds=1), started_at__lt=window_end)
        .exclude(outcome=SyncOutcome.SKIPPED_LOCKED)
        .order_by("started_at")
        .values_list("started_at", flat=True)
    )
    ticked = list(
        WorkflowSession.objects.filter(schedule=schedule, created_at__gte=window_start + timedelta(seconds=1),
                                       created_at__lt=window_end)
        .order_by("created_at").values_list("created_at", flat=True)
    )  # fmt: skip
    figures.notes = {"sync gaps s": gaps(syncs), "schedule gaps s": gaps(ticked)}
    figures.print()
    for what, times, interval in (("polling syncs", syncs, poll), ("scheduled sessions", ticked, tick)):
        # One per interval: never two within half an interval, and as many as the intervals the window spans.
        assert len(times) >= 5, f"too few {what}: {gaps(times)}"
        assert min(gaps(times)) >= interval / 2, f"two {what} in one interval: {gaps(times)}"
        span = (times[-1] - times[0]).total_seconds()
        assert abs((len(times) - 1) - span / interval) <= 1, f"{what} not one per interval: {gaps(times)}"


# --- full suite only: service outages -----------------------------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


def redis_up() -> bool:
    return _run("redis-cli", "ping").stdout.strip() == "PONG"


def redis_stop() -> None:
    _run("redis-cli", "shutdown", "nosave")
    wait_until(lambda: not redis_up(), timeout=15, message="Redis down")


def redis_start() -> None:
    if not redis_up():
        _run("redis-server", "/etc/redis/redis.conf")
        wait_until(redis_up, timeout=30, message="Redis up")


def postgres_cluster() -> tuple[str, str]:
    """(version, name) of the cluster on port 5432, from ``pg_lsclusters``."""
    for line in _run("pg_lsclusters", "--no-header").stdout.splitlines():
        version, name, port, *_ = line.split()
        if port == "5432":
            return version, name
    raise RuntimeError("no Postgres cluster on port 5432")


def postgres_ctl(action: str) -> None:
    version, name = postgres_cluster()
    result = _run("pg_ctlcluster", version, name, action)
    assert result.returncode == 0 or action == "start", result.stderr


def postgres_up() -> bool:
    return "online" in _run("pg_lsclusters", "--no-header").stdout


@full_only
def test_redis_stopped_for_30_seconds_mid_run(fleet, ops, settings):
    figures = Figures("Redis stopped 30 s")
    mock = fleet(8)
    install_schedules(settings, poll_interval=30)
    ops.define(chain("redis"))
    started_at = time.monotonic()
    with workers(mock.url, extra={"AGENTKIT_POLL_INTERVAL": "30"}):
        session_ids = trigger_burst(ops, "redis", 40, "before")
        try:
            redis_stop()
            outage_started = time.monotonic()
            during: list[str] = []
            while time.monotonic() - outage_started < 30:
                during += trigger_burst(ops, "redis", 5, "during")
                time.sleep(3)
        finally:
            redis_start()
        session_ids += during
        session_ids += trigger_burst(ops, "redis", 20, "after")
        sessions_ended(session_ids, timeout=180)
    figures.seconds = time.monotonic() - started_at
    check_outcome(session_ids, mock, figures)
    figures.notes["sessions started during the outage"] = len(during)
    figures.print()


@full_only
def test_postgres_restarted_mid_run(fleet, ops, settings):
    figures = Figures("Postgres restarted")
    mock = fleet(8)
    install_schedules(settings, poll_interval=30)
    # A report lost in the outage (the agent's SDK does not retry) is found by the task timeout; one retry then
    # completes the task. Without them that session would fail after OPSCORE_TASK_TIMEOUT_SECONDS.
    ops.define(chain("pg", timeoutSeconds=20, maxRetries=1, retryBackoffSeconds=0.5))
    started_at = time.monotonic()
    answers: Counter = Counter()
    with workers(mock.url, extra={"AGENTKIT_POLL_INTERVAL": "30"}):
        session_ids = trigger_burst(ops, "pg", 60, "before")
        probe_agent = mock.agents[0].agent_id
        try:
            postgres_ctl("stop")
            outage_started = time.monotonic()
            while time.monotonic() - outage_started < 8:
                state = {"agentId": probe_agent, "timestamp": timezone.now().isoformat(), "state": "idle"}
                for method, path, body in (
                    ("GET", f"/v1/opscore/sessions/{session_ids[0]}", None),
                    ("POST", "/v1/opscore/workflows/pg/run", {}),
                    ("POST", f"/v1/opscore/agent/{probe_agent}/state", state),
                ):
                    try:
                        response = requests.request(
                            method, ops.base_url + path, json=body, headers=ops.http.headers, timeout=5
                        )
                        answers[(response.request.method, response.status_code, response.json().get("code", ""))] += 1
                    except (requests.RequestException, ValueError) as exc:
                        answers[type(exc).__name__] += 1
                time.sleep(0.5)
        finally:
            postgres_ctl("start")
            wait_until(postgres_up, timeout=60, message="Postgres up")
        connection.close()  # the test's own connection died with the server
        wait_until(
            lambda: requests.get(f"{ops.base_url}/health", timeout=5).status_code == 200, timeout=60, message="health"
        )
        figures.notes["answers during the outage"] = {str(k): v for k, v in answers.items()}
        print(f"\n[faults] Postgres down: answers {figures.notes['answers during the outage']}")
        session_ids += trigger_burst(ops, "pg", 20, "after")
        sessions_ended(session_ids, timeout=180)
    figures.seconds = time.monotonic() - started_at
    check_outcome(session_ids, mock, figures)
    # No half-written rows: each in-flight run holds its agent, each agent's task is an in-flight run of its own.
    for agent in Agent.objects.exclude(assigned_task=""):
        assert TaskRun.objects.filter(pk=agent.assigned_task, status__in=TASK_RUN_IN_FLIGHT, agent=agent).exists()
    assert not DispatchOutbox.objects.exists()
    figures.print()
    api_answers = {k for k in answers if isinstance(k, tuple)}
    assert api_answers and all(status == 503 for _, status, _ in api_answers), answers


class TcpGate:
    """A TCP proxy in front of the mock AgentKit that can be closed (connections refused) and opened again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.open()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(256)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def close(self) -> None:
        """Refuse new connections and cut the open ones (kept-alive connections of the relays included)."""
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the gate's thread
            except OSError:
                pass
            self._server.close()
            self._server = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@full_only
def test_agentkit_down_for_60_seconds(fleet, ops, settings):
    figures = Figures("AgentKit down 60 s")
    mock = fleet(8)
    gate = TcpGate(int(mock.url.rsplit(":", 1)[1]))
    install_schedules(settings, poll_interval=30)
    ops.define(chain("ak"))
    started_at = time.monotonic()
    extra = {
        "AGENTKIT_POLL_INTERVAL": "30",
        "AGENTKIT_DISPATCH_MAX_RETRIES": "3",
        "AGENTKIT_DISPATCH_BACKOFF_SECONDS": "1",
    }
    with workers(gate.url, extra=extra):
        before = trigger_burst(ops, "ak", 20, "before")
        sessions_ended(before, timeout=120)
        try:
            gate.close()
            outage_started = time.monotonic()
            during = trigger_burst(ops, "ak", 20, "during")
            outcome_at = sessions_ended(during, timeout=60)  # a clear outcome while AgentKit is still down
            figures.notes["seconds to an outcome"] = round(time.monotonic() - outage_started, 1)
            time.sleep(max(0.0, 60 - (time.monotonic() - outage_started)))
        finally:
            gate.open()
        after = trigger_burst(ops, "ak", 20, "after")
        sessions_ended(after, timeout=120)
    figures.seconds = time.monotonic() - started_at
    failed = WorkflowSession.objects.filter(pk__in=during).exclude(status="completed")
    figures.notes["during: outcomes"] = dict(Counter(outcome_at.values()))
    figures.notes["during: errors"] = sorted({s.error[:160] for s in failed})[:3]
    # AgentKit was down for all of it: every session started then failed, each saying why.
    assert Counter(outcome_at.values()) == Counter({"failed": len(during)})
    assert all("Dispatch failed" in s.error for s in failed)
    check_outcome(before + after, mock, figures)
    figures.print()
    assert not Agent.objects.exclude(assigned_task="").exists()
