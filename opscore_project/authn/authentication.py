"""Bearer authentication: the shared ``OPSCORE_API_KEY`` (what agents use) or a per-user API token."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from rest_framework import authentication, exceptions

from opscore_project.authn.models import ApiToken, hash_token
from opscore_project.errors import WWW_AUTHENTICATE
from opscore_project.lib.signing import secrets_equal


@dataclass(frozen=True)
class ServicePrincipal:
    """The caller holding the shared API key (agents, AgentKit SDK). Not a database user."""

    username: str = "opscore-api-key"
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_superuser: bool = False
    is_active: bool = True
    pk: None = None
    id: None = None

    def __str__(self) -> str:
        return self.username


SERVICE_PRINCIPAL = ServicePrincipal()


class _TokenCache:
    """Per-process cache of token hash → user, so the hot path skips a query.

    Entries live ``OPSCORE_TOKEN_CACHE_SECONDS``: a revoked token stops working within that time in
    every process, and at once in the process that revoked it (``forget``).
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> object | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_hash: str, user: object) -> None:
        ttl = settings.OPSCORE_TOKEN_CACHE_SECONDS
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key_hash] = (time.monotonic() + ttl, user)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


token_cache = _TokenCache()


def authenticate_bearer_key(key: str) -> object | None:
    """Return the principal for ``key`` or None. Used by DRF and by plain Django views (metrics)."""
    if settings.OPSCORE_API_KEY and secrets_equal(key, settings.OPSCORE_API_KEY):
        return SERVICE_PRINCIPAL
    key_hash = hash_token(key)
    user = token_cache.get(key_hash)
    if user is not None:
        return user
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=key_hash, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    token_cache.put(key_hash, token.user)
    return token.user


WRONG_SCHEME_MESSAGE = "Use 'Authorization: Bearer <API key>'."
INVALID_KEY_MESSAGE = "Invalid or revoked API key."


def bearer_key_from_header(header: str) -> str | None:
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


class BearerAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        key = bearer_key_from_header(header)
        if key is None:
            raise exceptions.AuthenticationFailed(WRONG_SCHEME_MESSAGE)
        principal = authenticate_bearer_key(key)
        if principal is None:
            raise exceptions.AuthenticationFailed(INVALID_KEY_MESSAGE)
        return principal, key

    def authenticate_header(self, request) -> str:
        return WWW_AUTHENTICATE
