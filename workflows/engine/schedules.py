"""Workflow schedules: django-celery-beat PeriodicTasks that start sessions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from opscore_project.errors import ValidationFailed
from opscore_project.observability import events
from opscore_project.observability.oplog import log_operation
from workflows.engine.controls import workflow_pause_state
from workflows.engine.definitions import definition_get
from workflows.engine.sessions import session_start
from workflows.models import SESSION_ACTIVE, WorkflowDefinition, WorkflowSchedule, WorkflowSession


@dataclass(frozen=True)
class ScheduleRun:
    session: WorkflowSession | None
    skipped_reason: str = ""


# Two beats (scale-out, or a second beat left running) each send every tick. A tick that comes this soon after
# the last run is the other beat's copy of it: half the interval, at most 30 s (cron ticks are a minute apart).
MAX_DUPLICATE_TICK_SECONDS = 30.0


def duplicate_tick_seconds(schedule: WorkflowSchedule) -> float:
    if schedule.interval_seconds:
        return min(schedule.interval_seconds / 2, MAX_DUPLICATE_TICK_SECONDS)
    return MAX_DUPLICATE_TICK_SECONDS


def workflow_schedule_run(*, schedule_id: int, now: datetime | None = None) -> ScheduleRun:
    """Start one scheduled run, unless the previous one is still running and overlap is not allowed, or another
    beat's message for the same tick already started it (see ``duplicate_tick_seconds``)."""
    now = now or timezone.now()
    with transaction.atomic():
        schedule = WorkflowSchedule.objects.select_for_update().filter(pk=schedule_id).first()
        if schedule is None or not schedule.enabled:
            return ScheduleRun(None, "disabled or deleted")
        if schedule.last_run_at and (now - schedule.last_run_at).total_seconds() < duplicate_tick_seconds(schedule):
            return ScheduleRun(None, "this tick already ran")
        if not schedule.allow_overlap and schedule.sessions.filter(status__in=SESSION_ACTIVE).exists():
            log_operation(
                events.SCHEDULE_SKIPPED,
                {"schedule": schedule.name},
                message=f"Schedule {schedule.name!r} skipped: its previous run is still going",
            )
            return ScheduleRun(None, "previous run still active")
        definition = definition_get(workflow_id=schedule.workflow_id, version=schedule.version or None)
        if workflow_pause_state(workflow_id=schedule.workflow_id):
            log_operation(
                events.SCHEDULE_SKIPPED,
                {"schedule": schedule.name, "reason": "workflow paused"},
                message=f"Schedule {schedule.name!r} skipped: workflow {schedule.workflow_id} is paused and "
                "refuses new sessions",
            )
            return ScheduleRun(None, "workflow paused (rejectWhenPaused)")
        session, _ = session_start(
            definition=definition,
            agent=schedule.agent,
            initial_payload=schedule.initial_payload,
            schedule=schedule,
            now=now,
        )
        schedule.last_run_at = now
        schedule.save(update_fields=["last_run_at"])
    return ScheduleRun(session)


def workflow_schedule_problems(*, cron: str, interval_seconds: int | None) -> dict[str, list[str]]:
    """Field errors of a schedule's timing (exactly one of cron / interval; cron has five fields)."""
    if bool(cron.strip()) == bool(interval_seconds):
        return {"cron": ["Give either a cron expression or an interval, not both or neither."]}
    if cron.strip() and len(cron.split()) != 5:
        return {"cron": ["Use five fields: minute hour day-of-month month day-of-week."]}
    return {}


def workflow_schedule_save(*, schedule: WorkflowSchedule) -> WorkflowSchedule:
    """Save a schedule and create/update its django-celery-beat PeriodicTask. Raises ValidationFailed."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    problems = workflow_schedule_problems(cron=schedule.cron, interval_seconds=schedule.interval_seconds)
    if problems:
        raise ValidationFailed(problems)
    if not WorkflowDefinition.objects.filter(workflow_id=schedule.workflow_id).exists():
        raise ValidationFailed({"workflow_id": [f"No workflow definition {schedule.workflow_id!r}."]})
    with transaction.atomic():
        schedule.save()
        task = schedule.periodic_task or PeriodicTask(name=f"Workflow schedule #{schedule.pk}")
        task.name = f"Workflow schedule #{schedule.pk}: {schedule.name}"[:200]
        task.task = "workflows.tasks.run_scheduled_workflow"
        task.args = json.dumps([schedule.pk])
        task.enabled = schedule.enabled
        task.description = f"Runs workflow {schedule.workflow_id!r} (managed by the workflow schedule)."
        if schedule.cron.strip():
            minute, hour, day_of_month, month_of_year, day_of_week = schedule.cron.split()
            task.crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                day_of_week=day_of_week,
                timezone="UTC",
            )
            task.interval = None
            task.expire_seconds = 60
        else:
            task.interval, _ = IntervalSchedule.objects.get_or_create(
                every=schedule.interval_seconds, period=IntervalSchedule.SECONDS
            )
            task.crontab = None
            task.expire_seconds = max(1, min(schedule.interval_seconds, 300))
        task.save()
        if schedule.periodic_task_id != task.pk:
            schedule.periodic_task = task
            schedule.save(update_fields=["periodic_task"])
    return schedule


def workflow_schedule_delete(*, schedule: WorkflowSchedule) -> None:
    """Delete a schedule and its PeriodicTask."""
    with transaction.atomic():
        task = schedule.periodic_task
        schedule.delete()
        if task is not None:
            task.delete()
