from __future__ import annotations

from django.db import models
from django.utils import timezone


class SyncOutcome(models.TextChoices):
    SUCCESS = "success"
    UNSUPPORTED = "unsupported", "Listing unsupported"
    FAILED = "failed"
    SKIPPED_LOCKED = "skipped_locked", "Skipped (another sync was running)"


class SyncRun(models.Model):
    """One polling sync of ``GET /v1/agents`` (contract 1a). Written once, when the run ends."""

    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=SyncOutcome.choices)
    listed = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    deregistered = models.PositiveIntegerField(default=0)
    reregistered = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["started_at"], name="syncrun_started_idx")]

    def __str__(self) -> str:
        return f"sync {self.started_at:%Y-%m-%d %H:%M:%S} {self.outcome}"


class DispatchOutcomeKind(models.TextChoices):
    ACCEPTED = "accepted"
    RETRYING = "retrying"
    FAILED = "failed"


class DispatchAttempt(models.Model):
    """One ``POST /v1/agents/{id}/run`` attempt for a dispatch (contract 3). Append-only."""

    dispatch_ref = models.CharField(max_length=64, help_text="The engine's reference (its task run id).")
    agent_id = models.CharField(max_length=255)
    attempt = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=DispatchOutcomeKind.choices)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error_kind = models.CharField(max_length=20, blank=True, default="")
    error = models.TextField(blank=True, default="")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One row per attempt: a redelivered message (worker crash, acks_late) finds its attempt done.
            models.UniqueConstraint(fields=["dispatch_ref", "attempt"], name="dispatch_attempt_unique"),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="dispatch_attempt_created_idx"),
            models.Index(fields=["agent_id", "created_at"], name="dispatch_attempt_agent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.dispatch_ref} #{self.attempt} {self.outcome}"


class DispatchOutbox(models.Model):
    """A task the engine decided to send and the relay has not finished sending (the dispatch outbox).

    Written in the engine's transaction that assigned the task, so a dispatch can never be lost between that
    commit and the broker: the relay sends whatever is here, and a row exists exactly while its dispatch is
    current and unsent. ``dispatch_ref`` is the fencing token (task run id + dispatch number): the engine deletes
    the row when the run is retried, cancelled or re-routed, and a relay message for a ref that is gone does
    nothing. A relay leases rows (``leased_until``) instead of holding locks across the HTTP call; a relay that
    died leaves a lease that expires, and the row is sent again.
    """

    dispatch_ref = models.CharField(max_length=64, unique=True)
    agent_id = models.CharField(max_length=255)
    message = models.JSONField()
    session_id = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="POST attempts made so far.")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    leased_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["next_attempt_at"], name="dispatch_outbox_due_idx")]

    def __str__(self) -> str:
        return f"{self.dispatch_ref} -> {self.agent_id}"
