"""Where the relay runs: a pool of relay threads, in a process of its own beside the engine loop.

The engine loop's steps are CPU-bound Python; relay threads in the same process spend most of their time waiting
for the GIL between their reads and writes (about 60 ms from a dispatch's commit to its POST, measured). So on
Postgres the loop starts ``manage.py run_relay`` as a child process and tells it which dispatches to send with a
``NOTIFY`` on ``opscore_relay`` (``relay_notify``) once their step has committed. The child leases, POSTs and
records them with ``agentkit_bridge.relay`` exactly as before. A notification that nobody hears (the child is
restarting) costs nothing: the loop's overdue check finds the rows still in the outbox a second later. The child
exits when its parent goes away. Without Postgres (embedded mode) the threads run inside the loop's process.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import close_old_connections, connection

from agentkit_bridge.relay import dispatches_relay

logger = logging.getLogger(__name__)

RELAY_CHANNEL = "opscore_relay"
RELAY_BATCH = 4  # most dispatches one relay call leases, sends (one after the other) and records
_PAYLOAD_LIMIT = 7000  # bytes per NOTIFY payload (Postgres allows 8000)
MANAGE_PY = Path(__file__).resolve().parent.parent / "manage.py"


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


def relay_notify(refs: list[str]) -> None:
    """Ask the relay process to send these (committed) outbox rows: one ``NOTIFY`` per few hundred refs."""
    chunk: list[str] = []
    size = 0
    with connection.cursor() as cursor:
        for ref in refs:
            if chunk and size + len(ref) + 1 > _PAYLOAD_LIMIT:
                cursor.execute("SELECT pg_notify(%s, %s)", [RELAY_CHANNEL, ",".join(chunk)])
                chunk, size = [], 0
            chunk.append(ref)
            size += len(ref) + 1
        if chunk:
            cursor.execute("SELECT pg_notify(%s, %s)", [RELAY_CHANNEL, ",".join(chunk)])


def listen_connection(channel: str) -> psycopg.Connection:
    """A separate autocommit connection LISTENing on ``channel`` (Django's own connection is not used for it)."""
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
    conn.execute(f"LISTEN {channel}")
    return conn


def relay_serve(
    *, threads: int, stop: threading.Event, parent_pid: int | None = None, on_ready: Callable[[], None] | None = None
) -> None:
    """The relay process's loop: hand every notified ref to the relay threads until ``stop`` is set or the parent
    process is gone. Reconnects after a lost connection (notifications meanwhile are found as overdue).
    ``on_ready`` is called once, when it first listens."""
    relays = RelayThreads(threads)
    try:
        while not stop.is_set() and not _orphaned(parent_pid):
            try:
                listener = listen_connection(RELAY_CHANNEL)
            except psycopg.OperationalError:
                logger.warning("Relay cannot listen for dispatches; retrying in 1 s", exc_info=True)
                stop.wait(1.0)
                continue
            if on_ready is not None:
                on_ready()
                on_ready = None
            try:
                while not stop.is_set() and not _orphaned(parent_pid):
                    for notify in listener.notifies(timeout=0.5):
                        relays.submit([ref for ref in notify.payload.split(",") if ref])
                        if stop.is_set():
                            break
            except psycopg.OperationalError:
                logger.warning("Relay lost its database connection; reconnecting", exc_info=True)
            finally:
                listener.close()
    finally:
        relays.stop()


def _orphaned(parent_pid: int | None) -> bool:
    return parent_pid is not None and os.getppid() != parent_pid


class RelayProcess:
    """The relay child of an engine loop: started, restarted when it died, stopped with the loop."""

    READY_TIMEOUT_SECONDS = 30.0

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._process: subprocess.Popen | None = None

    def ensure_running(self) -> None:
        """Start the child if it is not running, and wait until it listens (a dispatch notified before that would
        only be found as overdue, a second or more later)."""
        if self._process is not None and self._process.poll() is None:
            return
        if self._process is not None:
            logger.warning("Relay process exited (code %s); starting it again", self._process.returncode)
        ready_read, ready_write = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, str(MANAGE_PY), "run_relay", "--threads", str(self._threads),
                 "--parent", str(os.getpid()), "--ready-fd", str(ready_write)],
                pass_fds=(ready_write,),
            )  # fmt: skip
            os.close(ready_write)
            ready_write = -1
            if not select.select([ready_read], [], [], self.READY_TIMEOUT_SECONDS)[0]:
                logger.warning("Relay process not listening after %.0f s", self.READY_TIMEOUT_SECONDS)
        finally:
            os.close(ready_read)
            if ready_write != -1:
                os.close(ready_write)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
