"""Workflow definitions (immutable per id+version), sessions, task runs, schedules and callback deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from workflows.validation import POLICY_FIELDS, DefinitionGraph


class DefinitionSource(models.TextChoices):
    API = "api"
    ADMIN = "admin"
    FILE = "file"
    INLINE = "inline", "Inline trigger"


class WorkflowDefinition(models.Model):
    """One version of a workflow. Never edited after creation: sessions pin the row they started on."""

    workflow_id = models.CharField(max_length=100, help_text="The definition's `id`.")
    version = models.CharField(max_length=50)
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    spec = models.JSONField(help_text="The normalised definition (as served by the API).")
    content_hash = models.CharField(max_length=64)
    source = models.CharField(max_length=10, choices=DefinitionSource.choices, default=DefinitionSource.API)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workflow_id", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workflow_id", "version"], name="workflow_definition_unique_version")
        ]
        indexes = [models.Index(fields=["workflow_id", "-created_at"], name="workflow_def_latest_idx")]

    def __str__(self) -> str:
        return f"{self.workflow_id} v{self.version}"

    @cached_property
    def graph(self) -> DefinitionGraph:
        return DefinitionGraph(self.spec["tasks"])

    def task(self, task_id: str) -> dict[str, Any]:
        return self.graph.tasks[task_id]

    def policy(self, task_id: str) -> dict[str, Any]:
        """Effective policy of a task: the task's own values, else the workflow ``defaults``, else settings."""
        base = {
            "maxRetries": 0,
            "retryBackoffSeconds": 1.0,
            "timeoutSeconds": settings.OPSCORE_TASK_TIMEOUT_SECONDS,
            "startTimeoutSeconds": settings.OPSCORE_TASK_START_TIMEOUT_SECONDS,
            "queueTimeoutSeconds": settings.OPSCORE_TASK_QUEUE_TIMEOUT_SECONDS,
            "priority": 0,
        }
        defaults = self.spec.get("defaults") or {}
        task = self.task(task_id)
        policy = {name: task.get(name, defaults.get(name, base[name])) for name in POLICY_FIELDS}
        policy["fallbackTaskId"] = task.get("fallbackTaskId")
        return policy


class SessionStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    WAITING_FOR_INPUT = "waiting_for_input", "Waiting for input"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


SESSION_ACTIVE = (SessionStatus.PENDING, SessionStatus.RUNNING, SessionStatus.WAITING_FOR_INPUT)


class WorkflowSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    definition = models.ForeignKey(WorkflowDefinition, on_delete=models.PROTECT, related_name="sessions")
    workflow_id = models.CharField(max_length=100, help_text="Copied from the definition, for filtering.")
    agent = models.ForeignKey(
        "lifecycle.Agent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="workflow_sessions",
        help_text="The agent the workflow was triggered for (none: routed by capability).",
    )
    status = models.CharField(max_length=20, choices=SessionStatus.choices, default=SessionStatus.PENDING)
    initial_payload = models.JSONField(default=dict, blank=True)
    callback_url = models.URLField(max_length=2048, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    schedule = models.ForeignKey(
        "workflows.WorkflowSchedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    error = models.TextField(blank=True, default="")
    retry_round = models.PositiveIntegerField(default=0, help_text="How many times the session was retried.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True, help_text="First task dispatched.")
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="session_created_idx"),
            models.Index(fields=["status", "-created_at"], name="session_status_created_idx"),
            models.Index(fields=["workflow_id", "-created_at"], name="session_workflow_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} {self.id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in SESSION_ACTIVE


class TaskRunStatus(models.TextChoices):
    PENDING = "pending"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    WAITING_FOR_INPUT = "waiting_for_input", "Waiting for input"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class TaskKind(models.TextChoices):
    AGENT = "agent"
    APPROVAL = "approval"
    INPUT = "input"


HUMAN_KINDS = (TaskKind.APPROVAL, TaskKind.INPUT)
# A waiting human task is active (the session is not done) but holds no agent and is never dispatched.
TASK_RUN_ACTIVE = (
    TaskRunStatus.PENDING,
    TaskRunStatus.DISPATCHED,
    TaskRunStatus.RUNNING,
    TaskRunStatus.WAITING_FOR_INPUT,
)
# Agent work still going on in a session (a session with none of these but a waiting run is waiting for input).
TASK_RUN_AGENT_WORK = (TaskRunStatus.PENDING, TaskRunStatus.DISPATCHED, TaskRunStatus.RUNNING)
TASK_RUN_IN_FLIGHT = (TaskRunStatus.DISPATCHED, TaskRunStatus.RUNNING)


class TaskRun(models.Model):
    """One attempt at one task of a session. Its id is the dispatch ref and the agent's ``assigned_task``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Every task-run update touches every index of this table (status changes, so no update is HOT): indexes
    # here are only those a hot query needs. The session's runs are found through task_run_session_idx and the
    # unique constraint, so the foreign keys to the session, the target and the avoided agent get none.
    session = models.ForeignKey(WorkflowSession, on_delete=models.CASCADE, related_name="task_runs", db_index=False)
    task_id = models.CharField(max_length=100)
    attempt = models.PositiveIntegerField(default=1, help_text="1, 2, … across the whole session.")
    try_number = models.PositiveIntegerField(default=1, help_text="Attempt within the current retry budget.")
    fallback_for = models.CharField(max_length=100, blank=True, default="", help_text="Task this one stands in for.")
    retry_round = models.PositiveIntegerField(default=0, help_text="The session's retry round it belongs to.")
    status = models.CharField(max_length=20, choices=TaskRunStatus.choices, default=TaskRunStatus.PENDING)
    kind = models.CharField(max_length=10, choices=TaskKind.choices, default=TaskKind.AGENT, db_default=TaskKind.AGENT)
    capability = models.CharField(max_length=255)
    priority = models.IntegerField(default=0)
    target_agent = models.ForeignKey(
        "lifecycle.Agent",
        db_index=False,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Only this agent may run it (workflow triggered for an agent); empty = by capability.",
    )
    agent = models.ForeignKey(
        "lifecycle.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="task_runs"
    )
    parameters = models.JSONField(default=dict, blank=True, help_text="Resolved parameters sent to the agent.")
    # The bridge's id of the current dispatch: "<run id>:<n>", new for each dispatch of the run (a run sent to
    # another agent after a 404 is a new dispatch; the bridge never re-sends a ref it already finished).
    dispatch_ref = models.CharField(max_length=64, blank=True, default="")
    dispatch_count = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(help_text="Dependencies satisfied (or retry due).")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True, help_text="AgentKit answered 202.")
    started_at = models.DateTimeField(null=True, blank=True, help_text="The agent reported active.")
    ended_at = models.DateTimeField(null=True, blank=True)
    timeout_at = models.DateTimeField(null=True, blank=True)
    queue_deadline = models.DateTimeField(null=True, blank=True)
    start_deadline = models.DateTimeField(
        null=True, blank=True, help_text="Dispatched: no `active` from the agent by then means delivery failed."
    )
    # Progress as the agent reported it, on the agent's own clock (never compared with ours): its last report
    # before the dispatch (only later reports can be about this run), the `active` that started the run, and an
    # `idle` that arrived before that `active` (reports can arrive out of order), kept until the `active` is in.
    agent_clock_at_dispatch = models.DateTimeField(null=True, blank=True)
    reported_active_at = models.DateTimeField(null=True, blank=True)
    early_idle_at = models.DateTimeField(null=True, blank=True)
    early_result = models.JSONField(null=True, blank=True)
    redeliveries = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Sent again after a delivery failure."
    )  # db_default: bulk SQL inserts (seeding, dashboards' benchmark) need not name it
    avoid_agent = models.ForeignKey(
        "lifecycle.Agent",
        db_index=False,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="An agent that failed to start this run: others are preferred.",
    )
    # Human tasks (approval / input). The prompt is resolved when the run is created; the assignees are copied
    # from the definition so the inbox reads them from the row. The answer fields are written once, by
    # compare-and-swap on the waiting status, and never changed afterwards (the audit of who decided what).
    prompt = models.TextField(blank=True, default="", db_default="")
    assignees = models.JSONField(
        null=True, blank=True, default=list, help_text="User names or group names; empty = any operator."
    )
    answer = models.JSONField(null=True, blank=True, help_text="The value as submitted (immutable).")
    answered_by = models.CharField(max_length=150, blank=True, default="", db_default="")
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_via = models.CharField(max_length=20, blank=True, default="", db_default="", help_text="api, dashboard…")
    answer_key = models.CharField(max_length=255, blank=True, default="", db_default="", help_text="Idempotency-Key.")
    remind_at = models.DateTimeField(null=True, blank=True, help_text="Waiting: send a reminder then.")

    class Meta:
        ordering = ["created_at", "attempt"]
        constraints = [
            models.UniqueConstraint(fields=["session", "task_id", "attempt"], name="task_run_unique_attempt"),
        ]
        indexes = [
            # The dispatcher and the state listener's EXISTS read only waiting runs.
            models.Index(fields=["ready_at"], name="task_run_pending_idx", condition=Q(status="pending")),
            models.Index(fields=["queue_deadline"], name="task_run_queue_deadline_idx", condition=Q(status="pending")),
            models.Index(
                fields=["timeout_at"],
                name="task_run_timeout_idx",
                condition=Q(status__in=["dispatched", "running"]),
            ),
            models.Index(
                fields=["start_deadline"], name="task_run_start_deadline_idx", condition=Q(status="dispatched")
            ),
            models.Index(fields=["session", "created_at"], name="task_run_session_idx"),
            # Human tasks' deadlines and the inbox read only waiting runs (few at any time).
            models.Index(
                fields=["timeout_at"], name="task_run_input_deadline_idx", condition=Q(status="waiting_for_input")
            ),
            models.Index(fields=["remind_at"], name="task_run_remind_idx", condition=Q(status="waiting_for_input")),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}#{self.attempt} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in TASK_RUN_ACTIVE

    @property
    def is_human(self) -> bool:
        return self.kind in HUMAN_KINDS


class PendingHumanTask(TaskRun):
    """Approval and input tasks waiting for a person (the admin's list, with an answer form)."""

    class Meta:
        proxy = True
        verbose_name = "pending human task"

    def __str__(self) -> str:
        return f"{self.task_id} of {self.session_id}"


class TaskReport(models.Model):
    """An agent's state report about a task run, waiting for the engine (the engine's inbox).

    Written by the state endpoint next to the report itself and deleted by the engine once applied, so reports
    are applied in batches, exactly once, in any process. No foreign keys: the row must be cheap to write.
    """

    run_id = models.UUIDField()
    agent_pk = models.IntegerField()
    state = models.CharField(max_length=20)
    reported_at = models.DateTimeField()
    details = models.JSONField(default=dict, blank=True)
    explicit = models.BooleanField(default=False, help_text="The report named the task run itself.")
    received_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.state} for {self.run_id}"


def duration_ms(start: datetime | None, end: datetime | None) -> int | None:
    """Milliseconds between two moments, None when either is unknown (timeline fields)."""
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))


class WorkflowSchedule(models.Model):
    """An operator's recurring run of a workflow, backed by a django-celery-beat PeriodicTask."""

    name = models.CharField(max_length=200, unique=True)
    workflow_id = models.CharField(max_length=100)
    version = models.CharField(max_length=50, blank=True, default="", help_text="Empty = latest version.")
    agent = models.ForeignKey(
        "lifecycle.Agent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Run for this agent; empty = route every task by capability.",
    )
    initial_payload = models.JSONField(default=dict, blank=True)
    cron = models.CharField(
        max_length=100, blank=True, default="", help_text="Cron expression 'minute hour day month weekday' (UTC)."
    )
    interval_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="Or: every N seconds.")
    enabled = models.BooleanField(default=True)
    allow_overlap = models.BooleanField(default=False, help_text="Start a run even if the previous one is running.")
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CallbackDelivery(models.Model):
    """One attempt to POST a finished session's summary to its ``callbackUrl``."""

    session = models.ForeignKey(WorkflowSession, on_delete=models.CASCADE, related_name="callback_deliveries")
    url = models.URLField(max_length=2048)
    attempt = models.PositiveIntegerField()
    status_code = models.IntegerField(null=True, blank=True)
    success = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    duration_ms = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["session", "attempt"], name="callback_delivery_unique_attempt"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} #{self.attempt} {'ok' if self.success else 'failed'}"


class DispatchControl(models.Model):
    """Maintenance mode, one row (pk 1) for the whole cluster: while ``paused_at`` is set the engine's dispatch
    pass sends nothing. Kept in the database so every engine loop, in every process, obeys it."""

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON, editable=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "dispatch control"

    def __str__(self) -> str:
        return "dispatch paused" if self.paused_at else "dispatch running"


class WorkflowControl(models.Model):
    """An operator's controls over every version of one workflow id: pause and the running-sessions limit.

    No row (the common case) means not paused and no limit."""

    workflow_id = models.CharField(max_length=100, unique=True)
    paused_at = models.DateTimeField(null=True, blank=True, help_text="Set: new sessions wait as pending.")
    reject_when_paused = models.BooleanField(
        default=False, help_text="While paused, refuse new sessions (409) instead of keeping them pending."
    )
    pause_reason = models.CharField(max_length=500, blank=True, default="")
    max_running_sessions = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most sessions of this workflow running at once; empty = no limit."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workflow_id"]

    def __str__(self) -> str:
        return self.workflow_id


class CapabilityLimit(models.Model):
    """Most task runs of one capability dispatched or running at once, across all agents and workflows."""

    capability = models.CharField(max_length=255, unique=True)
    max_in_flight = models.PositiveIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["capability"]

    def __str__(self) -> str:
        return f"{self.capability} ≤ {self.max_in_flight}"
