"""The engine loop: drains pending work whenever it is woken (LISTEN/NOTIFY) and at least every tick.

It runs as a thread in every Celery worker (``opscore_project.celery`` starts it) or on its own
(``manage.py run_engine``). Steps are exclusive cluster-wide, so running several loops is safe: they take over
from each other when one stops. Low load: a report is applied within milliseconds of its NOTIFY. High load: each
step takes everything that queued up during the previous one, so batches grow and the cost per task falls.

After each step the loop hands the step's dispatches to its relay threads, which POST them to AgentKit while the
next step runs; dispatches no relay finished (a crash, AgentKit down, a retry's backoff) are found again in the
outbox on a later tick.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime

import psycopg
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from agentkit_bridge.dispatch import relay_request
from agentkit_bridge.relay import dispatches_overdue, dispatches_relay
from opscore_project.observability import counters
from workflows.engine.reports import ENGINE_CHANNEL
from workflows.engine.step import StepResult, engine_step

logger = logging.getLogger(__name__)

MAX_STEPS_PER_DRAIN = 50
# A step is CPU-bound Python; the relay threads beside it mostly wait on I/O and need the GIL back after every
# read and write. With CPython's default 5 ms switch interval each of those hand-offs can wait a whole interval
# behind a step: about 60 ms from a dispatch's commit to its POST, measured. The loop's process switches faster.
GIL_SWITCH_INTERVAL_SECONDS = 0.0005
RELAY_BATCH = 4  # most dispatches one relay call leases, sends (one after the other) and records

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


def _listen_connection() -> psycopg.Connection:
    db = settings.DATABASES["default"]
    conn = psycopg.connect(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        autocommit=True,
        connect_timeout=5,
    )
    conn.execute(f"LISTEN {ENGINE_CHANNEL}")
    return conn


class RelayThreads:
    """Relay threads fed from one queue: each takes every ref waiting (up to RELAY_BATCH) and relays them in one
    lease and one record, so under load batches grow instead of the per-call cost."""

    def __init__(self, count: int) -> None:
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, name=f"relay-{i}", daemon=True) for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, refs: list[str]) -> None:
        with self._lock:
            fresh = [ref for ref in refs if ref not in self._queued]
            self._queued.update(fresh)
        for ref in fresh:
            self._queue.put(ref)

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    def _work(self) -> None:
        while True:
            ref = self._queue.get()
            if ref is None:
                break
            refs = [ref]
            while len(refs) < RELAY_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # keep the stop signal for this or another thread
                    break
                refs.append(more)
            try:
                close_old_connections()
                dispatches_relay(refs=refs)
            except Exception:
                logger.warning("Relaying %d dispatch(es) failed; they stay in the outbox", len(refs), exc_info=True)
                connection.close()
            finally:
                with self._lock:
                    self._queued.difference_update(refs)
        connection.close()


class EngineLoop(threading.Thread):
    """The loop as a daemon thread; ``stop()`` ends it after the current step."""

    def __init__(self) -> None:
        super().__init__(name="opscore-engine", daemon=True)
        self._stopping = threading.Event()
        self._relays: RelayThreads | None = None

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        logger.info("Workflow engine loop started")
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
        self._relays = RelayThreads(settings.OPSCORE_RELAY_THREADS)
        while not self._stopping.is_set():
            listener = None
            try:
                if settings.IS_POSTGRES:
                    listener = _listen_connection()
                last_overdue_check = 0.0
                while not self._stopping.is_set():
                    started = time.monotonic()
                    check_overdue = started - last_overdue_check >= settings.OPSCORE_ENGINE_TICK_SECONDS
                    if check_overdue:
                        last_overdue_check = started
                    results = engine_drain(relay=self._relays.submit, check_overdue=check_overdue)
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
        self._relays.stop()
        counters.counters_flush()
        close_old_connections()
        logger.info("Workflow engine loop stopped")

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
