"""Alert rules, the alerts they raise, each alert's deliveries, and the evaluator's cursor on the operation log."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Condition(models.TextChoices):
    AGENT_ERROR = "agent_error", "Agent entered error"
    AGENT_STALE = "agent_stale", "Agent stale"
    AGENT_QUARANTINED = "agent_quarantined", "Agent quarantined"
    SESSION_FAILED = "session_failed", "Session failed"
    TASK_QUEUE_WAIT = "task_queue_wait", "Task waiting in the queue"
    DELIVERY_FAILURES = "delivery_failures", "Task delivery failures"
    SYNC_FAILURES = "sync_failures", "Polling sync failing"
    INPUT_INBOX_AGE = "input_inbox_age", "Human-input inbox too old"


class Channel(models.TextChoices):
    WEBHOOK = "webhook", "Signed webhook"
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "Email"


class AlertRule(models.Model):
    """A condition to watch, where to send its alerts, and how often at most (the quiet period)."""

    name = models.CharField(max_length=200, unique=True)
    condition = models.CharField(max_length=30, choices=Condition.choices)
    threshold = models.FloatField(
        null=True, blank=True, help_text="Seconds or a count, depending on the condition (docs/alerts.md)."
    )
    workflow_id = models.CharField(
        max_length=100, blank=True, default="", help_text="Only this workflow (session and task conditions)."
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.CharField(max_length=2048, help_text="Webhook URL, or email addresses separated by commas.")
    quiet_period_seconds = models.PositiveIntegerField(
        default=300, help_text="The same alert is not sent again within this time."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertStatus(models.TextChoices):
    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(models.Model):
    """One occurrence of a rule's condition for one subject (``dedupe_key``: an agent, a workflow…).

    ``notified_status`` is what the channel was last told; it lags ``status`` while the quiet period holds a
    notification back, and a ``resolved`` is sent only after a ``firing`` was.
    """

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    dedupe_key = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=AlertStatus.choices, default=AlertStatus.FIRING)
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    fired_at = models.DateTimeField(default=timezone.now)
    last_occurred_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    notified_status = models.CharField(max_length=10, blank=True, default="")
    last_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [
            # At most one firing alert per rule and subject: a second evaluator cannot open a duplicate.
            models.UniqueConstraint(
                fields=["rule", "dedupe_key"], condition=Q(status="firing"), name="alert_one_firing_per_key"
            ),
        ]
        indexes = [
            models.Index(fields=["rule", "dedupe_key", "-fired_at"], name="alert_rule_key_idx"),
            models.Index(fields=["-fired_at"], name="alert_fired_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rule.name} [{self.dedupe_key}] {self.status}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class AlertDelivery(models.Model):
    """One notification (firing or resolved) of an alert to its rule's channel, with its attempts."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=10, choices=AlertStatus.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.CharField(max_length=2048)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    status_code = models.IntegerField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True, default="", help_text="Why the last attempt failed.")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The evaluator's safety net reads only deliveries still to send.
            models.Index(fields=["next_attempt_at"], name="alert_delivery_due_idx", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.kind} via {self.channel} ({self.status})"


class AlertCursor(models.Model):
    """How far the evaluator has read the operation log (an event id)."""

    name = models.CharField(max_length=50, primary_key=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name}: {self.last_event_id}"
