"""Schedule ``example_nightly`` every day at 02:00 UTC (the same as Admin → Workflow schedules → Add).

Run from the repository root, with the same environment as Ops-Core:

    python manage.py load_workflows examples/workflows/nightly.yaml
    python manage.py shell < examples/workflows/schedule.py

Celery beat then starts a session at each due time; a run is skipped while the previous one is still going.
"""

from workflows.models import WorkflowSchedule
from workflows.services import workflow_schedule_save

schedule = WorkflowSchedule.objects.filter(name="nightly summary").first() or WorkflowSchedule(name="nightly summary")
schedule.workflow_id = "example_nightly"
schedule.initial_payload = {"text": "Everything that happened today, in one paragraph."}
schedule.cron = "0 2 * * *"  # minute hour day month weekday, UTC; or set interval_seconds instead
schedule.interval_seconds = None
workflow_schedule_save(schedule=schedule)
print(f"schedule {schedule.name!r}: {schedule.cron} UTC -> periodic task {schedule.periodic_task.name!r}")
