"""Agents the scenarios start: the sample agent from examples/agent/ run in this process, plus two misbehaving
variants (silent, failing every other task). Each gets a capability of its own, so the simulated agents of the
stack never take the scenario's tasks."""

from __future__ import annotations

import argparse
import importlib.util
import secrets
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("sample_agent", ROOT / "examples" / "agent" / "agent.py")
sample_agent = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sample_agent)


class Agent(sample_agent.SampleAgent):
    """The sample agent, started and stopped by a scenario instead of by signals."""

    def __init__(self, target, capability: str, *, name: str | None = None, work_time: float = 0.1) -> None:
        args = argparse.Namespace(
            name=name or capability,
            capabilities=[capability],
            agentkit_url=target.agentkit_url,
            opscore_url=target.url,
            api_key=target.api_key,
            work_time=work_time,
            host="127.0.0.1",
            port=0,
        )
        super().__init__(args)
        self.handled = 0
        self._worker: threading.Thread | None = None

    def start(self) -> Agent:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.register()
        self._worker = threading.Thread(target=self.work_loop, daemon=True)
        self._worker.start()
        return self

    def handle(self, message: dict[str, Any]) -> None:
        self.handled += 1
        super().handle(message)

    def stop(self) -> None:
        self.server.shutdown()
        self.tasks.put(None)
        if self._worker is not None:
            self._worker.join(timeout=30)
        self.deregister()


class SilentAgent(Agent):
    """Accepts tasks (AgentKit's forward gets a 200) and never reports anything about them."""

    def handle(self, message: dict[str, Any]) -> None:
        self.handled += 1


class FlakyAgent(Agent):
    """Fails every other task it is given (reports ``error``, then ``idle``)."""

    def handle(self, message: dict[str, Any]) -> None:
        self.handled += 1
        if self.handled % 2 == 1:
            self.report("active", {})
            time.sleep(self.work_time)
            self.report("error", {"error_code": "FLAKY", "message": "failed every other task, as configured"})
            time.sleep(sample_agent.IDLE_AFTER_ERROR_DELAY)
            self.report("idle", {})
            return
        sample_agent.SampleAgent.handle(self, message)


def capability(prefix: str) -> str:
    return f"uat-{prefix}-{secrets.token_hex(3)}"
