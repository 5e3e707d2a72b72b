from __future__ import annotations

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
