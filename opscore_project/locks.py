"""A non-blocking, cluster-wide lock for periodic tasks (sync, sweep, purge), so overlapping runs cannot pile up."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock`` derived from ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def try_lock(name: str) -> Iterator[bool]:
    """Yield True if the lock ``name`` was acquired (and release it afterwards), False if someone holds it.

    Postgres: a session-level advisory lock, not a transaction-level one, so no transaction stays open while the
    holder talks HTTP to AgentKit; a crashed worker's connection closes and the lock goes with it.
    SQLite (embedded mode) has no such lock, but embedded mode runs exactly one worker process (``--pool solo``),
    so a process-local lock is equivalent there.
    """
    if settings.IS_POSTGRES:
        key = lock_key(name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            acquired = bool(cursor.fetchone()[0])
        try:
            yield acquired
        finally:
            if acquired:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    with _local_locks_guard:
        lock = _local_locks.setdefault(name, threading.Lock())
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()
