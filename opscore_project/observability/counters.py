"""Metric counters buffered per process: the engine adds to them on every batch, and the counter rows are the
hottest rows in the database if every batch upserts them. In the engine loop's process (``defer``) increments
are summed in memory and written at most once per ``FLUSH_SECONDS`` (the loop also flushes on every tick and at
exit); everywhere else they are written right away. A process killed before its flush loses at most that much of
the counts; the operation-log rows themselves are always written with the change."""

from __future__ import annotations

import atexit
import logging
import threading
import time

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
_lock = threading.Lock()
_pending: dict[tuple[str, str], float] = {}
_last_flush = time.monotonic()
_defer = False


def defer(enabled: bool = True) -> None:
    """Buffer increments in this process (the engine loop calls this when it starts)."""
    global _defer
    _defer = enabled


def counters_add(increments: list[tuple[str, str, float]]) -> None:
    """Add ``(counter, labels, amount)`` rows: now, or into this process's buffer when deferring."""
    if not increments:
        return
    if not _defer:
        _write(increments)
        return
    with _lock:
        for name, labels, amount in increments:
            _pending[(name, labels)] = _pending.get((name, labels), 0.0) + amount
        due = time.monotonic() - _last_flush >= FLUSH_SECONDS
    if due:
        counters_flush()


def counters_flush() -> None:
    """Write the buffered increments in one statement."""
    global _last_flush
    with _lock:
        rows = [(name, labels, amount) for (name, labels), amount in _pending.items()]
        _pending.clear()
        _last_flush = time.monotonic()
    if not rows:
        return
    try:
        _write(rows)
    except Exception:
        logger.warning("Could not write %d metric counter increments; retrying later", len(rows), exc_info=True)
        with _lock:
            for name, labels, amount in rows:
                _pending[(name, labels)] = _pending.get((name, labels), 0.0) + amount


def _write(rows: list[tuple[str, str, float]]) -> None:
    from opscore_project.observability.services import metric_counters_increment

    metric_counters_increment(increments=rows)


atexit.register(counters_flush)
