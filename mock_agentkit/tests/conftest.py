"""A tiny fake Ops-Core that records what the mock AgentKit and the simulated agents send it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

API_KEY = "test-api-key"
WEBHOOK_SECRET = "test-webhook-secret"


@dataclass
class Received:
    kind: str  # "report" or "webhook"
    seq: int
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any
    arrived: float = field(default_factory=time.monotonic)


class FakeOpsCore:
    """Serves /health, the state report path and the webhook path on a free port, in its own thread."""

    def __init__(self, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.received: list[Received] = []
        self.rejected_reports = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def _record(self, kind: str, request: web.Request, raw: bytes) -> None:
        with self._lock:
            self.received.append(
                Received(kind, len(self.received), request.path, dict(request.headers), raw, json.loads(raw))
            )

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _state(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            with self._lock:
                self.rejected_reports += 1
            return web.json_response({"detail": "bad key"}, status=401)
        self._record("report", request, await request.read())
        return web.json_response({"status": "success"}, status=202)

    async def _notify(self, request: web.Request) -> web.Response:
        self._record("webhook", request, await request.read())
        return web.json_response({"status": "success"})

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/v1/opscore/internal/agent/notify")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_post("/v1/opscore/agent/{agent_id}/state", self._state)
        app.router.add_post("/v1/opscore/internal/agent/notify", self._notify)
        app.router.add_post("/redirecting-notify", self._redirect)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> FakeOpsCore:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def reports(self, agent_id: str | None = None) -> list[Received]:
        with self._lock:
            items = [r for r in self.received if r.kind == "report"]
        return [r for r in items if agent_id is None or r.body["agentId"] == agent_id]

    def webhooks(self, event_type: str | None = None) -> list[Received]:
        with self._lock:
            items = [r for r in self.received if r.kind == "webhook"]
        return [r for r in items if event_type is None or r.body["event_type"] == event_type]

    def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.01)


@pytest.fixture
def opscore() -> Iterator[FakeOpsCore]:
    fake = FakeOpsCore().start()
    yield fake
    fake.stop()


def report_states(fake: FakeOpsCore, agent_id: str) -> list[str]:
    return [r.body["state"] for r in fake.reports(agent_id)]
