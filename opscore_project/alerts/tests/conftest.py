"""Fixtures for the alerts: a real HTTP receiver on loopback, rules, and deliveries run in the test process."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from opscore_project.alerts import delivery as delivery_module
from opscore_project.alerts.services import alert_rule_create


class Receiver:
    """An HTTP server on a real socket that records each POST and answers the statuses it is given in turn."""

    def __init__(self) -> None:
        self.statuses = [200]  # answered in order; the last one repeats
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.times: list[float] = []  # time.monotonic() of each request
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                receiver.times.append(time.monotonic())
                statuses = receiver.statuses
                self.send_response(statuses.pop(0) if len(statuses) > 1 else statuses[0])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    # Loopback is refused unless allow-listed, as for completion callbacks (workflows/callback_safety.py).
    settings.OPSCORE_CALLBACK_ALLOW_HTTP, settings.OPSCORE_CALLBACK_ALLOWED_HOSTS = True, ["127.0.0.1"]
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Delivery ids the services queue for Celery (kept off the broker in unit tests)."""
    ids: list[int] = []
    monkeypatch.setattr(
        "opscore_project.alerts.evaluation.dispatching.enqueue_deliveries",
        lambda delivery_ids, **kwargs: ids.extend(delivery_ids),
    )
    return ids


@pytest.fixture
def deliver(queued):
    """Send every queued delivery once (as the Celery task would), in order."""

    def run(now=None):
        outcomes = [delivery_module.alert_delivery_attempt(delivery_id=i, now=now) for i in queued]
        queued.clear()
        return outcomes

    return run


@pytest.fixture
def make_rule(receiver):
    def make(condition: str, **kwargs: Any):
        values = {"name": f"rule-{condition}", "channel": "webhook", "target": receiver.url, **kwargs}
        return alert_rule_create(condition=condition, **values)

    return make


# The engine's fixtures (agents, definitions, sessions, reports), for tests that drive real workflow failures.
from workflows.tests.conftest import (  # noqa: E402, F401
    _fresh_definition_cache,
    clock,
    define,
    make_agent,
    relay_requests,
    report,
    sent,
    start,
)
