"""Every write of the workflow engine, by concern, in ``workflows.engine`` (this module re-exports the public ones).

- ``engine.definitions``: definition versions.
- ``engine.sessions``: start, cancel, retry.
- ``engine.reports``: the state listener (reports about task runs go to the engine's inbox).
- ``engine.step`` / ``engine.loop``: the engine's batches and the loop that runs them.
- ``engine.transitions``, ``engine.planning``, ``engine.progress``, ``engine.deadlines``, ``engine.dispatch``: what
  a batch does.
- ``engine.schedules``, ``engine.callbacks``: schedules and completion callbacks.
- ``engine.human``: answers to approval and input tasks, their timeouts, reminders and webhooks.
"""

from workflows.engine.callbacks import callback_deliver
from workflows.engine.definitions import definition_create, definition_get
from workflows.engine.human import human_task_answer
from workflows.engine.loop import engine_drain
from workflows.engine.schedules import (
    ScheduleRun,
    workflow_schedule_delete,
    workflow_schedule_problems,
    workflow_schedule_run,
    workflow_schedule_save,
)
from workflows.engine.sessions import session_cancel, session_retry, session_start
from workflows.engine.step import engine_step

__all__ = [
    "ScheduleRun",
    "callback_deliver",
    "definition_create",
    "definition_get",
    "engine_drain",
    "engine_step",
    "human_task_answer",
    "session_cancel",
    "session_retry",
    "session_start",
    "workflow_schedule_delete",
    "workflow_schedule_problems",
    "workflow_schedule_run",
    "workflow_schedule_save",
]
