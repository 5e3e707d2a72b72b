"""Run the mock AgentKit and simulated agents inside a test, against a real (live) Ops-Core.

Everything runs on free ports in a background thread with its own asyncio loop, so synchronous tests (Django's
``live_server``, ``requests``) can drive it::

    from mock_agentkit.testing import AgentSpec, running_mock_agentkit

    def test_workflow_runs(live_server, settings):
        with running_mock_agentkit(
            opscore_url=live_server.url,
            api_key=settings.OPSCORE_API_KEY,
            webhook_secret=settings.OPSCORE_WEBHOOK_SECRET,
            agents=[AgentSpec("summariser", ["summarise"])],
        ) as mock:
            settings.AGENTKIT_API_URL = mock.url
            agent = mock.agent("summariser")
            ...  # trigger a workflow in Ops-Core
            tasks = mock.wait_for_tasks(agent.agent_id, count=1)
            mock.set_behaviour(agent.agent_id, fail_next=1)

When the context manager yields, every simulated agent has registered with the mock and its first ``idle`` state
report has been sent to Ops-Core (the registration webhook follows ~20 ms later, as with the real AgentKit; call
``mock.drain()`` to wait for it). The API of this module is stable: add to it, don't change it.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from mock_agentkit.agents import AgentFleet, SentReport, SimulatedAgent, wait_for_opscore
from mock_agentkit.config import DEFAULT_CAPABILITIES, AgentSpec, MockConfig, default_agent_specs
from mock_agentkit.server import STATE_KEY, MockState, OutboundResult, create_app

__all__ = [
    "AgentInfo",
    "AgentSpec",
    "MockHandle",
    "OutboundResult",
    "SentReport",
    "running_mock_agentkit",
    "start_mock_agentkit",
]

T = TypeVar("T")


@dataclass(frozen=True)
class AgentInfo:
    """A simulated agent as registered with the mock AgentKit."""

    agent_id: str
    name: str
    capabilities: tuple[str, ...]
    port: int
    contact_endpoint: str

    @classmethod
    def of(cls, agent: SimulatedAgent) -> AgentInfo:
        assert agent.agent_id is not None
        return cls(agent.agent_id, agent.name, tuple(agent.capabilities), agent.port, agent.contact_endpoint)


class _LoopThread:
    """An asyncio loop running forever in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="mock-agentkit", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        """Run a plain function on the loop thread (so it never races the loop's own mutations)."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class MockHandle:
    """A running mock AgentKit plus simulated agents. Every method is safe to call from the test's thread.

    Attributes:
        url: base URL of the mock AgentKit (``http://127.0.0.1:<port>``) — point ``AGENTKIT_API_URL`` at it.
        agents: the simulated agents started with it (and by :meth:`add_agent`), in start order.
        config: the server's :class:`~mock_agentkit.config.MockConfig`.
    """

    def __init__(self, thread: _LoopThread, runner: web.AppRunner, state: MockState, fleet: AgentFleet) -> None:
        self._thread = thread
        self._runner = runner
        self._state = state
        self._fleet = fleet
        self.config = state.config
        self.url = f"http://127.0.0.1:{state.config.port}"
        self.agents: list[AgentInfo] = []
        self._stopped = False

    # --- agents ----------------------------------------------------------------------------------------------

    def agent(self, name: str) -> AgentInfo:
        """The simulated agent called ``name``; ``KeyError`` if there is none."""
        for info in self.agents:
            if info.name == name:
                return info
        raise KeyError(f"no simulated agent named {name!r}")

    def add_agent(self, spec: AgentSpec) -> AgentInfo:
        """Start one more simulated agent; returns once it registered and sent its first ``idle`` report."""
        started = self._thread.run(self._fleet.start([spec]), timeout=60)
        info = AgentInfo.of(started[0])
        self.agents.append(info)
        return info

    def register_agent(
        self,
        name: str,
        *,
        capabilities: list[str] | tuple[str, ...] = (),
        version: str = "1.0",
        contact_endpoint: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Register an agent that is *not* simulated (nobody answers at ``contact_endpoint``, nobody reports
        state); returns its agentId. The REGISTER webhook is sent as usual. With ``contact_endpoint=None``,
        ``/run`` for it answers 400. Raises ``ValueError`` if the name is taken."""

        async def register() -> str:
            async with self._fleet.session.post(
                f"{self.url}/v1/agents/register",
                json={
                    "agentName": name,
                    "version": version,
                    "capabilities": list(capabilities),
                    "contactEndpoint": contact_endpoint,
                    "metadata": metadata or {},
                },
            ) as response:
                answer = await response.json()
                if response.status != 201:
                    raise ValueError(f"registration of {name!r} failed: {response.status} {answer}")
                return answer["data"]["agentId"]

        return self._thread.run(register())

    def deregister(self, agent_id: str) -> None:
        """``DELETE /v1/agents/{agent_id}`` on the mock: the agent is gone (``/run`` answers 404) and a
        DEREGISTER webhook is sent. A simulated agent's server keeps running. ``KeyError`` if unknown."""

        async def delete() -> int:
            async with self._fleet.session.delete(f"{self.url}/v1/agents/{agent_id}") as response:
                return response.status

        status = self._thread.run(delete())
        if status == 404:
            raise KeyError(f"AgentKit does not know agent {agent_id}")

    def registered_agents(self) -> list[dict[str, Any]]:
        """The mock's registry in the ``GET /v1/agents`` item shape (also available when listing is off)."""
        return self._thread.call(lambda: [a.listing() for a in self._state.agents.values()])

    # --- what happened ----------------------------------------------------------------------------------------

    def received_tasks(self, agent_id: str) -> list[dict[str, Any]]:
        """Messages AgentKit forwarded to this simulated agent so far, as the agent received them."""
        return self._thread.call(lambda: [copy.deepcopy(t.message) for t in self._fleet.get(agent_id).received])

    def reports(self, agent_id: str) -> list[SentReport]:
        """State reports this simulated agent sent to Ops-Core so far (with Ops-Core's HTTP status)."""
        return self._thread.call(lambda: [copy.deepcopy(r) for r in self._fleet.get(agent_id).reports])

    def outbound(self) -> list[OutboundResult]:
        """Webhooks and forwarded tasks the mock sent so far, with the answer status (None: no answer)."""
        return self._thread.call(lambda: list(self._state.outbound))

    def wait_for_tasks(self, agent_id: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until the agent received at least ``count`` tasks; returns them. ``TimeoutError`` otherwise."""
        return self._wait(lambda: self.received_tasks(agent_id), count, timeout, f"{count} task(s) for {agent_id}")

    def wait_for_reports(self, agent_id: str, count: int, timeout: float = 10.0) -> list[SentReport]:
        """Wait until the agent sent at least ``count`` state reports (its first ``idle`` included)."""
        return self._wait(lambda: self.reports(agent_id), count, timeout, f"{count} report(s) from {agent_id}")

    def _wait(self, read: Callable[[], list[T]], count: int, timeout: float, what: str) -> list[T]:
        deadline = time.monotonic() + timeout
        while True:
            items = read()
            if len(items) >= count:
                return items
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout}s for {what}; got {len(items)}")
            time.sleep(0.02)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until no webhook, forwarded task or agent work is in flight; ``False`` on timeout."""

        async def both() -> bool:
            deadline = time.monotonic() + timeout
            while True:
                server_done = await self._state.drain(max(0.0, deadline - time.monotonic()))
                agents_done = await self._fleet.drain(max(0.0, deadline - time.monotonic()))
                if server_done and agents_done and not self._state.background:
                    return True
                if time.monotonic() >= deadline:
                    return False

        return self._thread.run(both(), timeout=timeout + 5)

    # --- behaviour --------------------------------------------------------------------------------------------

    def set_behaviour(
        self,
        agent_id: str,
        *,
        work_time: float | None = None,
        failure_rate: float | None = None,
        fail_next: int | None = None,
        silent: bool | None = None,
    ) -> None:
        """Change a simulated agent's behaviour for tasks it receives from now on (``None``: unchanged).

        ``fail_next=N`` makes its next N tasks fail (error report, then idle), whatever ``failure_rate`` says;
        ``silent=True`` makes it accept tasks and never report about them."""
        self._thread.call(
            lambda: self._fleet.get(agent_id).set_behaviour(
                work_time=work_time, failure_rate=failure_rate, fail_next=fail_next, silent=silent
            )
        )

    # --- lifecycle --------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop agents and server and the background thread; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._thread.run(self._fleet.stop(), timeout=15)
            self._thread.run(self._runner.cleanup(), timeout=15)
        finally:
            self._thread.close()


def _listening_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def start_mock_agentkit(
    *,
    opscore_url: str,
    api_key: str,
    webhook_secret: str | None,
    agents: list[AgentSpec] | int = 0,
    listing: bool = True,
    work_time: float = 0.0,
    failure_rate: float = 0.0,
    silent_fraction: float = 0.0,
    capabilities: list[str] | tuple[str, ...] = DEFAULT_CAPABILITIES,
    echo_task_id: bool = False,
    webhook_url: str | None = None,
    webhook_delay: float = 0.02,
    seed: int | None = None,
    wait_for_opscore_seconds: float = 0.0,
) -> MockHandle:
    """Like :func:`running_mock_agentkit` but returns the handle; call ``handle.stop()`` yourself (for
    session-scoped fixtures)."""
    config = MockConfig(
        host="127.0.0.1",
        port=0,
        opscore_api_url=opscore_url.rstrip("/"),
        opscore_api_key=api_key,
        webhook_secret=webhook_secret,
        webhook_url=webhook_url,
        listing=listing,
        webhook_delay=webhook_delay,
    )
    specs = (
        default_agent_specs(agents, capabilities=capabilities, silent_fraction=silent_fraction)
        if isinstance(agents, int)
        else list(agents)
    )
    thread = _LoopThread()

    async def start_server() -> tuple[web.AppRunner, MockState]:
        runner = web.AppRunner(create_app(config), access_log=None, handle_signals=False)
        await runner.setup()
        sock = _listening_socket(config.host)
        config.port = sock.getsockname()[1]
        await web.SockSite(runner, sock, backlog=1024).start()
        return runner, runner.app[STATE_KEY]

    try:
        runner, state = thread.run(start_server())
        fleet = AgentFleet(
            agentkit_url=f"http://127.0.0.1:{config.port}",
            opscore_api_url=config.opscore_api_url,
            opscore_api_key=api_key,
            default_work_time=work_time,
            default_failure_rate=failure_rate,
            echo_task_id=echo_task_id,
            seed=seed,
        )
    except BaseException:
        thread.close()
        raise
    handle = MockHandle(thread, runner, state, fleet)
    try:
        if wait_for_opscore_seconds > 0:
            thread.run(wait_for_opscore(opscore_url, timeout=wait_for_opscore_seconds), timeout=None)
        if specs:
            started = thread.run(fleet.start(specs), timeout=120)
            handle.agents.extend(AgentInfo.of(agent) for agent in started)
    except BaseException:
        handle.stop()
        raise
    return handle


@contextmanager
def running_mock_agentkit(
    *,
    opscore_url: str,
    api_key: str,
    webhook_secret: str | None,
    agents: list[AgentSpec] | int = 0,
    listing: bool = True,
    work_time: float = 0.0,
    failure_rate: float = 0.0,
    silent_fraction: float = 0.0,
    capabilities: list[str] | tuple[str, ...] = DEFAULT_CAPABILITIES,
    echo_task_id: bool = False,
    webhook_url: str | None = None,
    webhook_delay: float = 0.02,
    seed: int | None = None,
    wait_for_opscore_seconds: float = 0.0,
) -> Iterator[MockHandle]:
    """Start the mock AgentKit and simulated agents on free loopback ports; stop everything on exit.

    Args:
        opscore_url: Ops-Core base URL; agents report to ``{opscore_url}/v1/opscore/agent/{id}/state``.
        api_key: the Bearer key agents send with state reports.
        webhook_secret: HMAC secret for webhooks; ``None`` sends no webhooks (like AgentKit without one).
        agents: specs, or a count of default agents (capabilities spread over ``capabilities``).
        listing: ``False`` makes ``GET /v1/agents`` answer 404 like today's real AgentKit.
        work_time / failure_rate: defaults for agents whose spec leaves them ``None``.
        silent_fraction: with an int ``agents``, the fraction (the last ones) that never report on tasks.
        echo_task_id: agents put ``opscore_task_id`` in report details (the real SDK never does).
        webhook_url: defaults to ``{opscore_url}/v1/opscore/internal/agent/notify``.
        webhook_delay: seconds between the 201 and the webhook (the real one trails the first report).
        seed: seeds the failure draws, for reproducible runs.
        wait_for_opscore_seconds: if > 0, poll ``{opscore_url}/health`` that long before starting agents.

    Yields a :class:`MockHandle`. Raises ``RuntimeError`` if an agent cannot register.
    """
    handle = start_mock_agentkit(
        opscore_url=opscore_url,
        api_key=api_key,
        webhook_secret=webhook_secret,
        agents=agents,
        listing=listing,
        work_time=work_time,
        failure_rate=failure_rate,
        silent_fraction=silent_fraction,
        capabilities=capabilities,
        echo_task_id=echo_task_id,
        webhook_url=webhook_url,
        webhook_delay=webhook_delay,
        seed=seed,
        wait_for_opscore_seconds=wait_for_opscore_seconds,
    )
    try:
        yield handle
    finally:
        handle.stop()
