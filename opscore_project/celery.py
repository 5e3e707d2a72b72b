"""The Celery app: Redis broker, schedules in django-celery-beat (editable in the admin)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opscore_project.settings")

app = Celery("opscore")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
