from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from opscore_project.authn.models import TOKEN_PREFIX_LENGTH, ApiToken, hash_token
from opscore_project.authn.scopes import SCOPES, parse_scopes


class InvalidScopes(ValueError):
    pass


def api_token_create(
    *,
    name: str,
    scopes: list[str],
    user: AbstractBaseUser | None = None,
    agent_id: str = "",
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the raw key, which is shown once and never stored.

    Raises InvalidScopes for an empty list or an unknown scope name.
    """
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InvalidScopes(f"Scopes must be one or more of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}.")
    raw = ApiToken.generate_key()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        scopes=" ".join(parse_scopes(" ".join(scopes))),
        agent_id=agent_id,
        expires_at=expires_at,
        prefix=raw[:TOKEN_PREFIX_LENGTH],
        key_hash=hash_token(raw),
    )
    return token, raw


def api_token_revoke(*, token_ids: list[int]) -> int:
    """Revoke tokens (idempotent); returns how many were newly revoked."""
    from opscore_project.authn.authentication import token_cache

    count = ApiToken.objects.filter(id__in=token_ids, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token_cache.clear()  # at once in this process; other processes within OPSCORE_TOKEN_CACHE_SECONDS
    return count


def api_token_is_valid(*, raw: str) -> bool:
    """True when ``raw`` is an active (not revoked, not expired) token."""
    token = ApiToken.objects.filter(key_hash=hash_token(raw)).first()
    return token is not None and token.is_active
