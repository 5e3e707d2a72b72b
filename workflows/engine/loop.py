"""The engine loop: drains pending work whenever it is woken (LISTEN/NOTIFY) and at least every tick.

It runs as a thread in every Celery worker (``opscore_project.celery`` starts it) or on its own
(``manage.py run_engine``). Steps are exclusive cluster-wide, so running several loops is safe: they take over
from each other when one stops. Low load: a report is applied within milliseconds of its NOTIFY. High load: each
step takes everything that queued up during the previous one, so batches grow and the cost per task falls.

After each step the loop hands the step's dispatches to the relay (``agentkit_bridge.relay_workers``: a child
process woken by NOTIFY on Postgres), which POSTs them to AgentKit while the next step runs; dispatches no relay
finished (a crash, AgentKit down, a retry's backoff) are found again in the outbox on a later tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

import psycopg
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from agentkit_bridge.dispatch import relay_request
from agentkit_bridge.relay import dispatches_overdue
from agentkit_bridge.relay_workers import RelayProcess, RelayThreads, listen_connection, relay_notify
from opscore_project.observability import counters
from workflows.engine.reports import ENGINE_CHANNEL
from workflows.engine.step import StepResult, engine_step

logger = logging.getLogger(__name__)

MAX_STEPS_PER_DRAIN = 50

Relay = Callable[[list[str]], object]


def engine_drain(
    *, now: datetime | None = None, relay: Relay | None = None, check_overdue: bool = True
) -> list[StepResult]:
    """Step until nothing is left (or another process holds the engine), relaying each step's dispatches once it
    has committed, then relay whatever older dispatches are overdue. ``relay`` defaults to Celery messages.

    A step that did not fill its batch took everything there was (the runs it made ready it dispatched itself);
    what arrived meanwhile sent its own NOTIFY, so the loop comes back for it. Another step right away happens only
    after a full batch: steps are never run just to find nothing.
    """
    relay = relay or relay_request
    results: list[StepResult] = []
    for _ in range(MAX_STEPS_PER_DRAIN):
        result = engine_step(now=now)
        if result is None:
            break
        results.append(result)
        if result.dispatched:
            relay(result.dispatched)
        if not result.full:
            break
    if check_overdue:
        overdue = dispatches_overdue(now=now or timezone.now())
        if overdue:
            relay(overdue)
    return results


class EngineLoop(threading.Thread):
    """The loop as a daemon thread; ``stop()`` ends it after the current step."""

    def __init__(self) -> None:
        super().__init__(name="opscore-engine", daemon=True)
        self._stopping = threading.Event()
        self._relay_process: RelayProcess | None = None
        self._relay_threads: RelayThreads | None = None

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        logger.info("Workflow engine loop started")
        relay = self._start_relay()
        while not self._stopping.is_set():
            listener = None
            try:
                if settings.IS_POSTGRES:
                    listener = listen_connection(ENGINE_CHANNEL)
                last_overdue_check = 0.0
                while not self._stopping.is_set():
                    started = time.monotonic()
                    check_overdue = started - last_overdue_check >= settings.OPSCORE_ENGINE_TICK_SECONDS
                    if check_overdue:
                        last_overdue_check = started
                        if self._relay_process is not None:
                            self._relay_process.ensure_running()
                    results = engine_drain(relay=relay, check_overdue=check_overdue)
                    busy = any(result.did_work for result in results)
                    self._wait(listener)
                    if busy:
                        # Under load, let work gather for a moment: a step costs about the same for one report as
                        # for a hundred, so fewer, larger steps cost far less per task. Idle → no delay at all.
                        pause = settings.OPSCORE_ENGINE_MIN_STEP_SECONDS - (time.monotonic() - started)
                        if pause > 0:
                            self._stopping.wait(pause)
            except Exception:
                logger.warning("Workflow engine loop error; retrying in 1 s", exc_info=True)
                self._stopping.wait(1.0)
            finally:
                if listener is not None:
                    try:
                        listener.close()
                    except Exception:  # noqa: BLE001
                        pass
                connection.close()
        self._stop_relay()
        counters.counters_flush()
        close_old_connections()
        logger.info("Workflow engine loop stopped")

    def _start_relay(self) -> Relay:
        """On Postgres a child process relays (woken by NOTIFY); elsewhere threads of this process do."""
        if settings.IS_POSTGRES:
            self._relay_process = RelayProcess(settings.OPSCORE_RELAY_THREADS)
            self._relay_process.ensure_running()
            return relay_notify
        self._relay_threads = RelayThreads(settings.OPSCORE_RELAY_THREADS)
        return self._relay_threads.submit

    def _stop_relay(self) -> None:
        if self._relay_process is not None:
            self._relay_process.stop()
        if self._relay_threads is not None:
            self._relay_threads.stop()

    def _wait(self, listener: psycopg.Connection | None) -> None:
        tick = settings.OPSCORE_ENGINE_TICK_SECONDS
        if listener is None:
            self._stopping.wait(tick)
            return
        deadline = time.monotonic() + tick
        for _ in listener.notifies(timeout=tick, stop_after=1):
            break
        # Coalesce a burst: whatever else arrived is handled by the next drain anyway.
        if time.monotonic() < deadline:
            for _ in listener.notifies(timeout=0, stop_after=1000):
                pass
