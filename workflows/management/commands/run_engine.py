"""``manage.py run_engine``: run the workflow engine loop in the foreground (instead of inside Celery workers)."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from workflows.engine.loop import EngineLoop


class Command(BaseCommand):
    help = (
        "Run the workflow engine loop (it also runs inside every Celery worker unless OPSCORE_ENGINE_IN_WORKER=false)."
    )

    def handle(self, *args, **options) -> None:
        loop = EngineLoop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: loop.stop())
        loop.start()
        while loop.is_alive():
            loop.join(timeout=0.5)
