from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class AgentState(models.TextChoices):
    """States agents report (contract section 2). The real example agent sends idle, active and error."""

    INITIALIZING = "initializing"
    IDLE = "idle"
    ACTIVE = "active"
    ERROR = "error"
    FINISHED = "finished"


class AgentSource(models.TextChoices):
    """How Ops-Core first learned of an agent."""

    WEBHOOK = "webhook", "Registration webhook"
    POLL = "poll", "AgentKit polling"
    STATE_REPORT = "state_report", "State report"


class BreakerState(models.TextChoices):
    """An agent's circuit breaker (docs/operations.md#quarantine). ``open``: quarantined; once its cool-down has
    passed it may take one trial task, which moves it to ``half_open`` until that task ends."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CapabilitiesSource(models.TextChoices):
    """Where an agent's known capabilities came from (empty while they are unknown)."""

    WEBHOOK = "webhook", "Registration webhook"
    POLL = "poll", "AgentKit polling"
    OPERATOR = "operator", "Set by an operator"
    REPORT = "report", "Announced in a state report"


# Sources that come from AgentKit's registration: a non-empty list from them replaces what an operator or a report
# set, and a report never overrides it.
AGENTKIT_CAPABILITY_SOURCES = (CapabilitiesSource.WEBHOOK, CapabilitiesSource.POLL)


class Agent(models.Model):
    agent_id = models.CharField(max_length=255, unique=True, help_text="AgentKit's agentId.")
    name = models.CharField(max_length=255, blank=True, default="")
    version = models.CharField(max_length=100, blank=True, default="")
    capabilities = models.JSONField(default=list, blank=True)
    # False while the agent is known only from its state reports (contract 1c): its capabilities are unknown,
    # which is not the same as an empty list.
    capabilities_known = models.BooleanField(default=False)
    contact_endpoint = models.CharField(max_length=2048, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=20, choices=AgentSource.choices)
    registered_at = models.DateTimeField(null=True, blank=True)
    deregistered_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=AgentState.choices, blank=True, default="")
    state_timestamp = models.DateTimeField(null=True, blank=True, help_text="The agent's own timestamp.")
    state_details = models.JSONField(default=dict, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="When its last report was received.")
    # Set by the workflow engine while a task run is in flight on this agent (an opaque id: lifecycle does
    # not know workflows). Returned by the state write so progress handling needs no extra query.
    assigned_task = models.CharField(max_length=64, blank=True, default="")
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    delivery_failures = models.PositiveIntegerField(
        default=0,
        db_default=0,  # the raw-SQL upserts (state write, sync) do not name this column
        help_text="Tasks AgentKit accepted for it that it never started (no `active` in time).",
    )
    last_delivery_failure_at = models.DateTimeField(null=True, blank=True)
    capabilities_source = models.CharField(
        max_length=20, choices=CapabilitiesSource.choices, blank=True, default="", db_default=""
    )
    # Operator controls (docs/operations.md). Every new column has a database default: the raw-SQL upserts (state
    # write, sync) do not name them.
    drained_at = models.DateTimeField(
        null=True, blank=True, help_text="Set while drained: no new tasks; the current one finishes."
    )
    breaker_state = models.CharField(
        max_length=10, choices=BreakerState.choices, default=BreakerState.CLOSED, db_default=BreakerState.CLOSED
    )
    quarantined_until = models.DateTimeField(
        null=True, blank=True, help_text="End of the quarantine's cool-down (empty while open: until released)."
    )
    quarantine_reason = models.CharField(max_length=500, blank=True, default="", db_default="")
    breaker_cooldown_seconds = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Cool-down of the current quarantine (doubles after a failed trial)."
    )
    breaker_changed_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Task outcomes in a row that were failures (failed, timed out, undelivered)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["agent_id"]
        indexes = [
            # No index on state, state_timestamp or last_seen_at, on purpose: every state report changes them,
            # and an update that changes no indexed column is a HOT update — Postgres then touches none of this
            # table's indexes (GIN included). Measured: +30% state writes per second. Filters on state or
            # staleness read the whole table, which is a few thousand rows (and "not stale" matches most).
            models.Index(fields=["source"], name="agent_source_idx"),
            models.Index(fields=["deregistered_at"], name="agent_deregistered_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.agent_id})" if self.name else self.agent_id

    @property
    def is_registered(self) -> bool:
        return self.deregistered_at is None

    @property
    def is_drained(self) -> bool:
        return self.drained_at is not None

    @property
    def is_quarantined(self) -> bool:
        return self.breaker_state != BreakerState.CLOSED

    def is_stale(self, now: datetime | None = None) -> bool:
        """Silent for longer than OPSCORE_AGENT_STALE_SECONDS (never seen counts from creation)."""
        now = now or timezone.now()
        seen = self.last_seen_at or self.created_at
        return seen < now - timedelta(seconds=settings.OPSCORE_AGENT_STALE_SECONDS)


def takes_tasks(now) -> Q:
    """Agents the operator controls let the engine give a task to: not drained, and the circuit breaker closed or its
    cool-down over (then for one trial task). The dispatch pass, its claim and the engine's wake-up all use this."""
    return Q(drained_at__isnull=True) & (Q(breaker_state=BreakerState.CLOSED) | Q(quarantined_until__lte=now))


def takes_tasks_sql(alias: str, now: str) -> str:
    """``takes_tasks`` in SQL, on the agent row ``alias`` (``""`` for an unqualified one), ``now`` a placeholder."""
    column = f"{alias}." if alias else ""
    return f"{column}drained_at IS NULL AND ({column}breaker_state = 'closed' OR {column}quarantined_until <= {now})"


class AgentStateRecord(models.Model):
    """One accepted state report. Append-only: rows are never updated."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="history")
    state = models.CharField(max_length=20, choices=AgentState.choices)
    details = models.JSONField(default=dict, blank=True)
    reported_at = models.DateTimeField(help_text="The agent's timestamp.")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-reported_at", "-id"]
        constraints = [
            # An exact duplicate (same agent, timestamp, state) is stored once; this index also serves
            # the per-agent history listing (agent, newest first).
            models.UniqueConstraint(fields=["agent", "reported_at", "state"], name="state_record_unique_report"),
        ]
        indexes = [
            models.Index(fields=["received_at"], name="state_record_received_idx"),
            # The admin's history list, all agents, newest first.
            models.Index(fields=["-reported_at", "-id"], name="state_record_reported_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.state} @ {self.reported_at.isoformat()}"
