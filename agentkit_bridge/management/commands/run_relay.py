"""``manage.py run_relay``: send the dispatch outbox to AgentKit, woken by the engine (the engine loop starts one)."""

from __future__ import annotations

import os
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from agentkit_bridge.relay_workers import relay_serve


class Command(BaseCommand):
    help = (
        "Relay workflow dispatches to AgentKit as the engine writes them (every engine loop runs one as its child "
        "process; run it yourself only to debug)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--threads", type=int, default=settings.OPSCORE_RELAY_THREADS)
        parser.add_argument("--parent", type=int, default=None, help="Exit when this process is gone.")
        parser.add_argument("--ready-fd", type=int, default=None, help="Write a line here once listening.")

    def handle(self, *args, threads: int, parent: int | None, ready_fd: int | None, **options) -> None:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())

        def ready() -> None:
            if ready_fd is not None:
                with os.fdopen(ready_fd, "w") as pipe:
                    pipe.write("ready\n")

        relay_serve(threads=threads, stop=stop, parent_pid=parent, on_ready=ready)
