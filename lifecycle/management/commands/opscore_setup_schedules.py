from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from opscore_project.schedules import default_schedules


class Command(BaseCommand):
    help = "Create Ops-Core's periodic tasks in django-celery-beat (existing entries are kept as they are)."

    @transaction.atomic
    def handle(self, *args, **options):
        for spec in default_schedules():
            if PeriodicTask.objects.filter(name=spec.name).exists():
                continue
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=spec.every_seconds, period=IntervalSchedule.SECONDS
            )
            PeriodicTask.objects.create(
                name=spec.name,
                task=spec.task,
                interval=interval,
                description=spec.description,
                expire_seconds=spec.expires_seconds,
            )
            self.stdout.write(f"Scheduled {spec.name!r} every {spec.every_seconds}s")
