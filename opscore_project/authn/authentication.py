"""Bearer authentication: the shared ``OPSCORE_API_KEY`` (scope ``agent``, what agents use) or an API token with
its own scopes. Both become an ``ApiPrincipal``; ``permissions.ScopePermission`` checks the scope a view needs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from opscore_project.authn import throttling
from opscore_project.authn.models import ApiToken, hash_token
from opscore_project.authn.scopes import AGENT, effective_scopes
from opscore_project.errors import WWW_AUTHENTICATE
from opscore_project.lib.signing import secrets_equal


@dataclass(frozen=True)
class ApiPrincipal:
    """The caller behind a Bearer key (``request.user`` in DRF views). Not a database user."""

    username: str
    scopes: frozenset[str]
    agent_id: str = ""  # set: the token may act only for this agent
    token_id: int | None = None
    owner: str = ""  # the user name of the token's owner, if it has one (who answers a human task)
    expires_at: datetime | None = field(default=None, compare=False)
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_superuser: bool = False
    is_active: bool = True
    pk: None = None
    id: None = None

    def __str__(self) -> str:
        return self.username

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def may_act_for(self, agent_id: str) -> bool:
        return not self.agent_id or self.agent_id == agent_id

    @property
    def throttle_ident(self) -> str:
        return f"token:{self.token_id}" if self.token_id is not None else "shared-key"


SHARED_KEY_PRINCIPAL = ApiPrincipal(username="opscore-api-key", scopes=effective_scopes([AGENT]))


class _TokenCache:
    """Per-process cache of token hash → principal, so the hot path skips a query.

    Entries live ``OPSCORE_TOKEN_CACHE_SECONDS``: a revoked token stops working within that time in
    every process, and at once in the process that revoked it (``clear``).
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, ApiPrincipal]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> ApiPrincipal | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_hash: str, principal: ApiPrincipal) -> None:
        ttl = settings.OPSCORE_TOKEN_CACHE_SECONDS
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key_hash] = (time.monotonic() + ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


token_cache = _TokenCache()


def principal_for_token(token: ApiToken) -> ApiPrincipal:
    return ApiPrincipal(
        username=f"token:{token.name}",
        scopes=effective_scopes(token.scope_list),
        agent_id=token.agent_id,
        token_id=token.pk,
        owner=token.user.get_username() if token.user_id else "",
        expires_at=token.expires_at,
    )


def authenticate_bearer_key(key: str) -> ApiPrincipal | None:
    """Return the principal for ``key`` or None. Used by DRF, the state fast path and ``/metrics``."""
    if settings.OPSCORE_API_KEY and secrets_equal(key, settings.OPSCORE_API_KEY):
        return SHARED_KEY_PRINCIPAL
    key_hash = hash_token(key)
    principal = token_cache.get(key_hash)
    if principal is None:
        token = ApiToken.objects.select_related("user").filter(key_hash=key_hash, revoked_at__isnull=True).first()
        if token is None or (token.user is not None and not token.user.is_active):
            return None
        principal = principal_for_token(token)
        token_cache.put(key_hash, principal)
    if principal.expires_at is not None and principal.expires_at <= timezone.now():
        return None
    return principal


WRONG_SCHEME_MESSAGE = "Use 'Authorization: Bearer <API key>'."
INVALID_KEY_MESSAGE = "Invalid, expired or revoked API key."


def missing_scope_message(scope: str) -> str:
    return f"This request needs the '{scope}' scope, which your credentials do not have."


AGENT_MISMATCH_MESSAGE = "This token is bound to another agent."


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
        client = throttling.client_address(request.META)
        throttling.refuse_if_blocked(client)
        key = bearer_key_from_header(header)
        principal = authenticate_bearer_key(key) if key is not None else None
        if principal is None:
            wait = throttling.record_failed_auth(client)
            if wait is not None:
                raise exceptions.Throttled(wait=wait, detail=throttling.BLOCKED_MESSAGE)
            raise exceptions.AuthenticationFailed(WRONG_SCHEME_MESSAGE if key is None else INVALID_KEY_MESSAGE)
        return principal, key

    def authenticate_header(self, request) -> str:
        return WWW_AUTHENTICATE
