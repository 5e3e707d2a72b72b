"""Simulated agents: each one an aiohttp server that registers with AgentKit and reports state to Ops-Core.

They behave like the AgentKit SDK's example agent (contract 2, 4): register over HTTP, report ``idle`` straight
away, and for every forwarded task report ``active``, work, then ``idle`` with a small result. Differences that make
them more useful for testing:

- a simulated failure reports ``error`` with ``{"error_code": "SIMULATED_FAILURE", "message": …}`` and, 50 ms later,
  ``idle`` with ``{}`` so the agent is available again (the error report alone decides the task's fate);
- a *silent* agent accepts forwarded tasks and never reports anything about them;
- an agent works on one task at a time (tasks queue up), so each task's active…idle pair is contiguous.

Like the real SDK, reports carry no task or session id (unless ``echo_task_id`` is set) and are never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import random
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from mock_agentkit.config import AgentSpec

logger = logging.getLogger("mock_agentkit.agents")

# An error report is followed by an idle report this much later, so the agent becomes available again.
IDLE_AFTER_ERROR_DELAY = 0.05


@dataclass
class SentReport:
    """A state report a simulated agent sent to Ops-Core, and how Ops-Core answered (``None``: no answer)."""

    state: str
    details: dict[str, Any]
    timestamp: str
    status: int | None = None
    error: str | None = None


@dataclass
class ReceivedTask:
    """A message AgentKit forwarded to a simulated agent, exactly as received."""

    message: dict[str, Any]
    received_at: float = field(default_factory=time.time)


class SimulatedAgent:
    """One agent: its own HTTP server (the contact endpoint), its behaviour knobs and what it saw and sent."""

    def __init__(self, spec: AgentSpec, fleet: AgentFleet) -> None:
        self.spec = spec
        self.fleet = fleet
        self.name = spec.name
        self.capabilities = list(spec.capabilities)
        self.work_time = spec.work_time if spec.work_time is not None else fleet.default_work_time
        self.failure_rate = spec.failure_rate if spec.failure_rate is not None else fleet.default_failure_rate
        self.silent = spec.silent
        self.fail_next = 0
        self.agent_id: str | None = None
        self.port: int = 0
        self.received: list[ReceivedTask] = []
        self.reports: list[SentReport] = []
        self.first_report_sent = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._work_lock = asyncio.Lock()
        self._last_timestamp: datetime | None = None

    @property
    def contact_endpoint(self) -> str:
        return f"http://{self.fleet.advertised_host}:{self.port}/"

    def set_behaviour(
        self,
        *,
        work_time: float | None = None,
        failure_rate: float | None = None,
        fail_next: int | None = None,
        silent: bool | None = None,
    ) -> None:
        """Change behaviour for tasks received from now on; ``None`` leaves a knob unchanged."""
        if work_time is not None:
            if work_time < 0:
                raise ValueError("work_time must be >= 0")
            self.work_time = work_time
        if failure_rate is not None:
            if not 0.0 <= failure_rate <= 1.0:
                raise ValueError("failure_rate must be within 0..1")
            self.failure_rate = failure_rate
        if fail_next is not None:
            if fail_next < 0:
                raise ValueError("fail_next must be >= 0")
            self.fail_next = fail_next
        if silent is not None:
            self.silent = silent

    # --- server side: the contact endpoint -------------------------------------------------------------------

    async def start_server(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_post("/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop_server(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "agentId": self.agent_id, "agentName": self.name})

    async def _receive(self, request: web.Request) -> web.Response:
        try:
            message = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"status": "error", "message": "invalid JSON"}, status=400)
        if not isinstance(message, dict):
            return web.json_response({"status": "error", "message": "expected a JSON object"}, status=400)
        self.received.append(ReceivedTask(message=message))
        if self.silent:
            logger.info("%s received a task and stays silent", self.name)
        else:
            self.fleet.spawn(self._work(message))
        return web.json_response({"status": "success", "message": "Task received."})

    # --- client side: registration and state reports --------------------------------------------------------

    async def register(self) -> str:
        """Register with AgentKit over HTTP, then report ``idle`` at once, as the SDK's example agent does."""
        body = {
            "agentName": self.name,
            "version": self.spec.version,
            "capabilities": self.capabilities,
            "contactEndpoint": self.contact_endpoint,
            "metadata": self.spec.metadata,
        }
        url = f"{self.fleet.agentkit_url}/v1/agents/register"
        async with self.fleet.session.post(url, json=body, allow_redirects=False) as response:
            answer = await response.json(content_type=None)
            if response.status != 201:
                raise RuntimeError(f"registering {self.name} failed: {response.status} {answer}")
        self.agent_id = answer["data"]["agentId"]
        try:
            await self.report("idle", {})
        finally:
            self.first_report_sent.set()
        return self.agent_id

    async def deregister(self) -> None:
        """Remove this agent from AgentKit (``DELETE /v1/agents/{id}``); a 404 is ignored."""
        if self.agent_id is None:
            return
        url = f"{self.fleet.agentkit_url}/v1/agents/{self.agent_id}"
        async with self.fleet.session.delete(url) as response:
            if response.status not in (200, 404):
                raise RuntimeError(f"deregistering {self.name} failed: {response.status}")

    def _next_timestamp(self) -> datetime:
        # Two reports in the same microsecond would tie on timestamp and Ops-Core could not order them.
        now = datetime.now(UTC)
        if self._last_timestamp is not None and now <= self._last_timestamp:
            now = self._last_timestamp + timedelta(microseconds=1)
        self._last_timestamp = now
        return now

    async def report(self, state: str, details: dict[str, Any]) -> SentReport:
        """POST one state report to Ops-Core; failures are logged and not retried (the SDK does not retry)."""
        assert self.agent_id is not None
        timestamp = self._next_timestamp().isoformat()
        body = {"agentId": self.agent_id, "timestamp": timestamp, "state": state, "details": details}
        sent = SentReport(state=state, details=details, timestamp=timestamp)
        self.reports.append(sent)
        url = f"{self.fleet.opscore_api_url}/v1/opscore/agent/{self.agent_id}/state"
        headers = {"Authorization": f"Bearer {self.fleet.opscore_api_key}", "Content-Type": "application/json"}
        try:
            async with self.fleet.session.post(
                url, data=json.dumps(body, separators=(",", ":")), headers=headers, allow_redirects=False
            ) as response:
                sent.status = response.status
                if not 200 <= response.status < 300:
                    sent.error = (await response.text(errors="replace"))[:200]
                    logger.warning("%s: state report %s answered %s: %s", self.name, state, response.status, sent.error)
        except (aiohttp.ClientError, TimeoutError) as exc:
            sent.error = f"{type(exc).__name__}: {exc}"
            logger.warning("%s: state report %s failed: %s", self.name, state, sent.error)
        return sent

    def _should_fail(self) -> bool:
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        return self.failure_rate > 0 and self.fleet.random.random() < self.failure_rate

    async def _work(self, message: dict[str, Any]) -> None:
        payload = message.get("payload") if isinstance(message.get("payload"), dict) else {}
        task_name = payload.get("task_name") or message.get("task_name")
        extra: dict[str, Any] = {}
        if self.fleet.echo_task_id and message.get("opscore_task_id"):
            extra["opscore_task_id"] = message["opscore_task_id"]
        async with self._work_lock:
            await self.report("active", {"task_name": task_name, **extra})
            if self.work_time > 0:
                await asyncio.sleep(self.work_time)
            if self._should_fail():
                failure = {"error_code": "SIMULATED_FAILURE", "message": f"{self.name} failed task {task_name!r}"}
                await self.report("error", {**failure, **extra})
                await asyncio.sleep(IDLE_AFTER_ERROR_DELAY)
                await self.report("idle", {})
            else:
                result = simulated_result(task_name, payload.get("task_parameters"), self.name)
                await self.report("idle", {"result": result, **extra})


def simulated_result(task_name: Any, parameters: Any, agent_name: str) -> dict[str, Any]:
    """A small, plausible result: the parameters echoed, plus a derived field per demo capability so workflows can
    chain results (e.g. ``{{ tasks.summarise.result.summary }}``)."""
    result: dict[str, Any] = {"task_name": task_name, "echo": parameters, "agent": agent_name}
    text = parameters.get("text") if isinstance(parameters, dict) else None
    text = text if isinstance(text, str) else ""
    if task_name == "summarise":
        result["summary"] = (text[:60] + "…") if len(text) > 60 else text
    elif task_name == "translate":
        language = parameters.get("target_language", "fr") if isinstance(parameters, dict) else "fr"
        result["translation"] = f"[{language}] {text}"
    elif task_name == "classify":
        result["label"] = "long" if len(text) > 40 else "short"
    return result


class AgentFleet:
    """Starts, tracks and stops simulated agents; they share one ``aiohttp.ClientSession`` and one event loop."""

    def __init__(
        self,
        *,
        agentkit_url: str,
        opscore_api_url: str,
        opscore_api_key: str,
        host: str = "127.0.0.1",
        first_port: int = 0,
        avoid_ports: set[int] | None = None,
        default_work_time: float = 0.0,
        default_failure_rate: float = 0.0,
        echo_task_id: bool = False,
        seed: int | None = None,
        connection_limit: int = 256,
        request_timeout: float = 10.0,
    ) -> None:
        self.agentkit_url = agentkit_url.rstrip("/")
        self.opscore_api_url = opscore_api_url.rstrip("/")
        self.opscore_api_key = opscore_api_key
        self.host = host
        self.advertised_host = "127.0.0.1" if host in {"0.0.0.0", "", "::"} else host
        self.next_port = first_port
        self.avoid_ports = set(avoid_ports or ())
        self.default_work_time = default_work_time
        self.default_failure_rate = default_failure_rate
        self.echo_task_id = echo_task_id
        self.random = random.Random(seed)
        self.agents: dict[str, SimulatedAgent] = {}  # by agent id, once registered
        self._all: list[SimulatedAgent] = []
        self._connection_limit = connection_limit
        self._request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connection_limit),
                timeout=aiohttp.ClientTimeout(total=self._request_timeout),
            )
        return self._session

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("simulated agent task crashed", exc_info=task.exception())

    def _bind(self) -> socket.socket:
        """A listening socket on the next free port (port 0: any free port), skipping ports in use."""
        for _ in range(1000):
            port = self.next_port
            if port and port in self.avoid_ports:
                self.next_port += 1
                continue
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, port))
            except OSError as exc:
                sock.close()
                if port and exc.errno == errno.EADDRINUSE:
                    logger.info("port %s is in use, trying the next one", port)
                    self.next_port += 1
                    continue
                raise
            sock.listen(512)
            sock.setblocking(False)
            if port:
                self.next_port = port + 1
            return sock
        raise RuntimeError("no free port found for a simulated agent")

    async def start(self, specs: list[AgentSpec], *, concurrency: int = 32) -> list[SimulatedAgent]:
        """Bind a server per spec, then register each agent and send its first ``idle`` report."""
        new = []
        for spec in specs:
            agent = SimulatedAgent(spec, self)
            await agent.start_server(self._bind())
            self._all.append(agent)
            new.append(agent)
        semaphore = asyncio.Semaphore(concurrency)

        async def register(agent: SimulatedAgent) -> None:
            async with semaphore:
                await agent.register()
            assert agent.agent_id is not None
            self.agents[agent.agent_id] = agent

        await asyncio.gather(*(register(agent) for agent in new))
        return new

    def get(self, agent_id: str) -> SimulatedAgent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise KeyError(f"no simulated agent with id {agent_id}") from None

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until no agent is still working on a task (tasks received meanwhile included)."""
        deadline = time.monotonic() + timeout
        while self._background:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self._background), timeout=remaining)
        return True

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(*(agent.stop_server() for agent in self._all), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None


async def wait_for_opscore(opscore_api_url: str, *, timeout: float = 60.0, interval: float = 1.0) -> bool:
    """Poll ``GET {opscore_api_url}/health`` until it answers 2xx; ``False`` if it never did within ``timeout``."""
    url = f"{opscore_api_url.rstrip('/')}/health"
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url, allow_redirects=False) as response:
                    if 200 <= response.status < 300:
                        return True
            if time.monotonic() + interval > deadline:
                return False
            await asyncio.sleep(interval)
