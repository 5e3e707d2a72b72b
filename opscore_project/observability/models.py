from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone


class EventLevel(models.TextChoices):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class OperationEvent(models.Model):
    """One lifecycle or workflow event (the operation log). Ids are plain strings: no foreign keys, so
    events outlive what they describe and writing one never locks an agent or session row."""

    created_at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=10, choices=EventLevel.choices, default=EventLevel.INFO)
    event_type = models.CharField(max_length=64)
    agent_id = models.CharField(max_length=255, blank=True, default="")
    session_id = models.CharField(max_length=64, blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    message = models.TextField(blank=True, default="")
    context = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        # Every workflow task writes about six rows here, so each index costs on the hot path. The agent, session
        # and level indexes are partial: they leave out the rows a filter on them never asks for (rows of no agent
        # or no session; info and debug rows, which the time index serves as they are most rows).
        indexes = [
            models.Index(fields=["created_at"], name="event_created_idx"),
            models.Index(fields=["event_type", "created_at"], name="event_type_created_idx"),
            models.Index(fields=["agent_id", "created_at"], name="event_agent_created_idx", condition=~Q(agent_id="")),
            models.Index(
                fields=["session_id", "created_at"], name="event_session_created_idx", condition=~Q(session_id="")
            ),
            models.Index(
                fields=["level", "created_at"],
                name="event_level_created_idx",
                condition=Q(level__in=[EventLevel.WARNING, EventLevel.ERROR]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.level} {self.event_type}"


class MetricCounter(models.Model):
    """A monotonic counter behind a Prometheus series (``/metrics``), kept in Postgres so every web and worker
    process contributes and the values survive restarts and event retention. Incremented by ``log_operation``
    after the surrounding transaction commits; ``labels`` is the canonical ``k=v,k=v`` form."""

    name = models.CharField(max_length=100)
    labels = models.CharField(max_length=255, blank=True, default="")
    value = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "labels"], name="metric_counter_unique")]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels}}} {self.value}"

    def label_dict(self) -> dict[str, str]:
        return dict(part.split("=", 1) for part in self.labels.split(",") if "=" in part)


class FleetChartBucket(models.Model):
    """A closed bucket of the overview's charts in a rolled-up window: the latency chart's figures (queue wait
    p50/p95, dispatch latency p95) and the tasks chart's count, as the charts' own statements computed them once
    nothing in the bucket could change any more (``fleet/rollup.py``). Postgres only."""

    step_seconds = models.PositiveIntegerField(help_text="The chart window's bucket length.")
    bucket = models.DateTimeField(help_text="Start of the bucket (aligned like the chart's buckets).")
    dispatched = models.PositiveIntegerField(help_text="Task runs dispatched in the bucket.")
    queue_p50 = models.FloatField(null=True)
    queue_p95 = models.FloatField(null=True)
    dispatch_p95 = models.FloatField(null=True)
    tasks_completed = models.PositiveIntegerField(help_text="Task runs that ended as completed in the bucket.")
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["step_seconds", "bucket"], name="fleet_chart_bucket_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} +{self.step_seconds}s: {self.dispatched} dispatched"


class FleetAgentRuns(models.Model):
    """Per agent, the task runs that ended in ``[since, closed_until)`` of a chart window: how many, how many
    failed, and their run times (ms) sorted, so the agent tables need only add the runs that ended since
    (``fleet/rollup.py``). Postgres only; no foreign key (rebuilt as a whole, every hour)."""

    span_seconds = models.PositiveIntegerField(help_text="The chart window's length.")
    since = models.DateTimeField()
    closed_until = models.DateTimeField()
    agent_pk = models.BigIntegerField()
    runs = models.PositiveIntegerField()
    failures = models.PositiveIntegerField()
    run_ms = ArrayField(models.FloatField(), help_text="Run times in ms, ascending.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["span_seconds", "since", "agent_pk"], name="fleet_agent_runs_unique"),
        ]

    def __str__(self) -> str:
        return (
            f"agent {self.agent_pk}, {self.since:%Y-%m-%d %H:%M} – {self.closed_until:%Y-%m-%d %H:%M}: {self.runs} runs"
        )
