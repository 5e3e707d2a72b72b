"""The relay's own process: woken by NOTIFY, started and restarted by the engine loop, gone with its parent."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from agentkit_bridge.relay_workers import RELAY_CHANNEL, RelayProcess, listen_connection, relay_notify, relay_serve
from opscore_project.testing import test_process_env as process_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_refs_are_notified_in_payloads_postgres_accepts():
    refs = [f"{index:08d}-0000-0000-0000-000000000000:1" for index in range(600)]
    listener = listen_connection(RELAY_CHANNEL)
    try:
        relay_notify(refs)
        payloads = [notify.payload for notify in listener.notifies(timeout=2, stop_after=10)]
    finally:
        listener.close()
    assert len(payloads) > 1
    assert all(len(payload.encode()) < 8000 for payload in payloads)
    assert [ref for payload in payloads for ref in payload.split(",")] == refs


def test_the_relay_child_listens_is_restarted_when_killed_and_stops(monkeypatch):
    for name, value in process_env().items():  # the child inherits this process's environment
        monkeypatch.setenv(name, value)
    relay = RelayProcess(threads=2)
    relay.ensure_running()  # returns once the child listens
    first = relay._process
    assert first.poll() is None
    assert _listening_backends() >= 1
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    relay.ensure_running()
    second = relay._process
    assert second.pid != first.pid and second.poll() is None
    relay.stop()
    assert second.poll() is not None


def test_the_relay_loop_ends_when_its_parent_is_gone():
    done = threading.Event()
    thread = threading.Thread(
        target=lambda: (relay_serve(threads=1, stop=threading.Event(), parent_pid=os.getppid() + 1), done.set()),
        daemon=True,
    )
    started = time.monotonic()
    thread.start()
    assert done.wait(timeout=10), "the relay loop kept running after its parent changed"
    assert time.monotonic() - started < 10


def _listening_backends() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE %s",
            [f"LISTEN {RELAY_CHANNEL}%"],
        )
        return cursor.fetchone()[0]
