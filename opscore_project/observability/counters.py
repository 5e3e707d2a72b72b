"""Metric counters buffered per process: every operation-log row adds to one or more counters, and the counter rows
would be the hottest rows in the database if every request and every engine batch upserted them (concurrent
requests queue on the same row lock). Increments are summed in memory and written in one statement at most once
per ``FLUSH_SECONDS`` by a flusher thread (started with the first increment in each process, so forked workers get
their own), at exit, and before ``/metrics`` answers. A process killed before its flush loses at most that second
of counts; the operation-log rows themselves are always written with the change."""

from __future__ import annotations

import atexit
import logging
import os
import threading

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
BACKGROUND_FLUSH = True  # the test suite turns it off in its own process, so flushes happen where a test asks
_lock = threading.Lock()
_pending: dict[tuple[str, str], float] = {}
_flusher_pid: int | None = None


def counters_add(increments: list[tuple[str, str, float]]) -> None:
    """Add ``(counter, labels, amount)`` rows to this process's buffer."""
    if not increments:
        return
    with _lock:
        for name, labels, amount in increments:
            _pending[(name, labels)] = _pending.get((name, labels), 0.0) + amount
        if BACKGROUND_FLUSH and _flusher_pid != os.getpid():
            _start_flusher()


def counters_flush() -> None:
    """Write the buffered increments in one statement (kept for the next flush if the database is unreachable)."""
    with _lock:
        rows = [(name, labels, amount) for (name, labels), amount in _pending.items()]
        _pending.clear()
    if not rows:
        return
    try:
        _write(rows)
    except Exception:
        logger.warning("Could not write %d metric counter increments; retrying later", len(rows), exc_info=True)
        with _lock:
            for name, labels, amount in rows:
                _pending[(name, labels)] = _pending.get((name, labels), 0.0) + amount


def counters_discard() -> None:
    """Drop this process's buffered increments (tests start each case with an empty buffer)."""
    with _lock:
        _pending.clear()


def _start_flusher() -> None:
    global _flusher_pid
    _flusher_pid = os.getpid()
    threading.Thread(target=_flush_forever, name="opscore-counters", daemon=True).start()


def _flush_forever() -> None:
    from django.db import connection

    stop = threading.Event()
    while not stop.wait(FLUSH_SECONDS):
        counters_flush()
        connection.close()  # this thread's own connection: do not keep one open per process for a counter


def _write(rows: list[tuple[str, str, float]]) -> None:
    from opscore_project.observability.services import metric_counters_increment

    metric_counters_increment(increments=rows)


atexit.register(counters_flush)
