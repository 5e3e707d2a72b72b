from datetime import timedelta

import pytest
from django.utils import timezone

from opscore_project.observability import services, tasks
from opscore_project.observability.models import OperationEvent
from opscore_project.schedules import default_schedules

pytestmark = pytest.mark.django_db


def make(age: timedelta, n: int = 1) -> None:
    now = timezone.now()
    OperationEvent.objects.bulk_create(
        OperationEvent(event_type="task.completed", created_at=now - age, message=f"{age}") for _ in range(n)
    )


def test_cleanup_deletes_only_events_older_than_the_retention(settings):
    settings.OPSCORE_EVENT_RETENTION_DAYS = 14
    make(timedelta(days=20), n=7)
    make(timedelta(days=14, minutes=1), n=2)
    make(timedelta(days=13, hours=23), n=3)
    make(timedelta(minutes=1), n=4)
    assert tasks.purge_old_events() == 9
    assert OperationEvent.objects.count() == 7
    assert not OperationEvent.objects.filter(created_at__lt=timezone.now() - timedelta(days=14)).exists()


def test_cleanup_works_in_batches():
    make(timedelta(days=30), n=25)
    make(timedelta(days=1), n=2)
    deleted = services.events_purge(older_than=timezone.now() - timedelta(days=14), batch_size=10)
    assert deleted == 25
    assert OperationEvent.objects.count() == 2


def test_the_retention_setting_is_honoured(settings):
    settings.OPSCORE_EVENT_RETENTION_DAYS = 2
    make(timedelta(days=3), n=1)
    make(timedelta(days=1), n=1)
    assert services.events_purge_locked() == 1


def test_cleanup_is_a_default_periodic_task():
    spec = next(s for s in default_schedules() if s.task == "opscore_project.observability.tasks.purge_old_events")
    assert spec.every_seconds <= 24 * 3600 and spec.expires_seconds
