import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from opscore_project.errors import ValidationFailed
from workflows import services
from workflows.models import TaskRun, WorkflowSchedule, WorkflowSession
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db


def test_saving_a_schedule_creates_and_updates_its_periodic_task(define):
    define(linear("c", wf_id="nightly"))
    schedule = services.workflow_schedule_save(
        schedule=WorkflowSchedule(name="nightly run", workflow_id="nightly", cron="0 3 * * *", initial_payload={"a": 1})
    )
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "workflows.tasks.run_scheduled_workflow" and json.loads(task.args) == [schedule.pk]
    assert task.crontab.hour == "3" and task.interval is None
    schedule.cron, schedule.interval_seconds, schedule.enabled = "", 60, False
    services.workflow_schedule_save(schedule=schedule)
    task.refresh_from_db()
    assert task.interval.every == 60 and task.crontab is None and not task.enabled
    services.workflow_schedule_delete(schedule=schedule)
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_a_schedule_needs_exactly_one_timing_and_a_known_workflow(define):
    define(linear("c", wf_id="w"))
    with pytest.raises(ValidationFailed):
        services.workflow_schedule_save(schedule=WorkflowSchedule(name="x", workflow_id="w"))
    with pytest.raises(ValidationFailed):
        services.workflow_schedule_save(schedule=WorkflowSchedule(name="x", workflow_id="w", cron="* *"))
    with pytest.raises(ValidationFailed):
        services.workflow_schedule_save(schedule=WorkflowSchedule(name="x", workflow_id="nope", interval_seconds=5))


def test_overlapping_scheduled_runs_are_skipped_unless_allowed(define, sent):
    define(linear("c", wf_id="w"))
    schedule = services.workflow_schedule_save(
        schedule=WorkflowSchedule(name="s", workflow_id="w", interval_seconds=10, initial_payload={"k": "v"})
    )
    start = timezone.now()
    first = services.workflow_schedule_run(schedule_id=schedule.pk, now=start)
    assert first.session.initial_payload == {"k": "v"} and first.session.schedule == schedule
    second = services.workflow_schedule_run(schedule_id=schedule.pk, now=start + timedelta(seconds=10))
    assert second.session is None and "still active" in second.skipped_reason
    schedule.allow_overlap = True
    services.workflow_schedule_save(schedule=schedule)
    third = services.workflow_schedule_run(schedule_id=schedule.pk, now=start + timedelta(seconds=20))
    assert third.session is not None
    assert WorkflowSession.objects.filter(schedule=schedule).count() == 2


def test_a_second_beat_sending_the_same_tick_starts_no_second_session(define, sent):
    define(linear("c", wf_id="w"))
    schedule = services.workflow_schedule_save(
        schedule=WorkflowSchedule(name="s", workflow_id="w", interval_seconds=10, allow_overlap=True)
    )
    start = timezone.now()
    assert services.workflow_schedule_run(schedule_id=schedule.pk, now=start).session is not None
    copy = services.workflow_schedule_run(schedule_id=schedule.pk, now=start + timedelta(seconds=4.9))
    assert copy.session is None and copy.skipped_reason == "this tick already ran"
    assert services.workflow_schedule_run(schedule_id=schedule.pk, now=start + timedelta(seconds=9)).session is not None
    assert WorkflowSession.objects.filter(schedule=schedule).count() == 2


def test_the_admin_creates_a_schedule(staff_client, define):
    define(linear("c", wf_id="w"))
    response = staff_client.post(
        "/admin/workflows/workflowschedule/add/",
        {"name": "every minute", "workflow_id": "w", "version": "", "agent": "", "initial_payload": "{}",
         "cron": "* * * * *", "interval_seconds": "", "enabled": "on"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    assert WorkflowSchedule.objects.get(name="every minute").periodic_task is not None
    bad = staff_client.post(
        "/admin/workflows/workflowschedule/add/",
        {"name": "bad", "workflow_id": "w", "initial_payload": "{}", "cron": "", "interval_seconds": ""},
    )
    assert bad.status_code == 200 and "Give either a cron expression" in bad.content.decode()


def test_the_sweep_is_among_the_default_periodic_tasks():
    from django.core.management import call_command

    call_command("opscore_setup_schedules", stdout=__import__("io").StringIO())
    sweep = PeriodicTask.objects.get(task="workflows.tasks.sweep")
    assert sweep.interval.every == 5 and sweep.expire_seconds == 5


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="advisory locks are Postgres's")
def test_engine_steps_are_exclusive_across_processes(define, sent):
    """The sweep and every engine loop run steps; while one process is in a step, the others skip theirs."""
    import psycopg

    from workflows import tasks
    from workflows.engine.step import ENGINE_LOCK_KEY

    db = settings.DATABASES["default"]
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=True
    ) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [ENGINE_LOCK_KEY])
        assert services.engine_step() is None
        assert tasks.sweep() is None
        other.execute("SELECT pg_advisory_unlock(%s)", [ENGINE_LOCK_KEY])
    session, _ = services.session_start(definition=define(linear("c")))  # waits: no agent
    assert services.engine_step() is not None
    assert TaskRun.objects.get(session=session).status == "pending"


def test_an_idle_sweep_logs_nothing_and_a_busy_one_does():
    import logging

    from opscore_project.observability.logs import IdleSweepFilter

    def record(name: str, msg: str, args) -> logging.LogRecord:
        return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)

    quiet = IdleSweepFilter()
    succeeded = "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"
    idle = {"name": "workflows.tasks.sweep", "id": "1", "runtime": 0.01, "return_value": "None"}
    busy = {**idle, "return_value": "{'steps': 1, 'reports': 0, 'deadlines': 2, 'dispatched': 1}"}
    assert not quiet.filter(record("celery.app.trace", succeeded, idle))
    assert quiet.filter(record("celery.app.trace", succeeded, busy))
    assert not quiet.filter(record("celery.worker.strategy", "Task %(name)s[%(id)s] received", idle))
    assert not quiet.filter(record("celery.beat", "Scheduler: Sending due task sweep (workflows.tasks.sweep)", ()))
    assert not quiet.filter(record("opscore.trace", "span celery.workflows.tasks.sweep 3.1ms", ()))

    # Through the configured console handler, as a worker logs it: nothing reaches the stream.
    import io

    handler = next(h for h in logging.getLogger().handlers if any(isinstance(f, IdleSweepFilter) for f in h.filters))
    stream, handler.stream = handler.stream, io.StringIO()
    try:
        logging.getLogger("celery.worker.strategy").info("Task %(name)s[%(id)s] received", idle)
        assert handler.stream.getvalue() == ""
    finally:
        handler.stream = stream
    other = {**idle, "name": "agentkit_bridge.tasks.sync_agents"}
    assert quiet.filter(record("celery.app.trace", succeeded, other))
