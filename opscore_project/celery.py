"""The Celery app: Redis broker, schedules in django-celery-beat (editable in the admin)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opscore_project.settings")

app = Celery("opscore")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# The workflow engine loop runs as a thread in each worker's main process (see workflows/engine/loop.py); steps
# are exclusive cluster-wide, so any number of workers can run it. OPSCORE_ENGINE_IN_WORKER=false turns it off
# (then run `manage.py run_engine` somewhere).
_engine_loop = None


@signals.worker_ready.connect
def _start_engine_loop(**_kwargs) -> None:
    global _engine_loop
    from django.conf import settings

    if not settings.OPSCORE_ENGINE_IN_WORKER:
        return
    from workflows.engine.loop import EngineLoop

    _engine_loop = EngineLoop()
    _engine_loop.start()


@signals.worker_shutdown.connect
def _stop_engine_loop(**_kwargs) -> None:
    if _engine_loop is not None:
        _engine_loop.stop()
        _engine_loop.join(timeout=10)
