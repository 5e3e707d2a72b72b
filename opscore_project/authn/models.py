from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from opscore_project.authn.scopes import OPERATOR, parse_scopes

TOKEN_PREFIX_LENGTH = 8


def hash_token(raw: str) -> str:
    """Tokens are stored hashed; a database leak does not leak usable keys."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class ApiToken(models.Model):
    """An API key with scopes, created in the admin or with ``manage.py opscore_token``; shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        null=True,
        blank=True,
        help_text="Optional owner: the token stops working when this user is deactivated.",
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'CI pipeline'.")
    scopes = models.CharField(
        max_length=100, default=OPERATOR, help_text="Space-separated: agent, operator, metrics, admin."
    )
    agent_id = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="Optional: an agent token may only report and act for this agent.",
    )
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, editable=False, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Optional: stops working after this.")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scope_list(self) -> list[str]:
        return parse_scopes(self.scopes)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @staticmethod
    def generate_key() -> str:
        return "ock_" + secrets.token_urlsafe(32)
