from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from opscore_project.authn.models import ApiToken, hash_token


def api_token_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the raw key, which is shown once and never stored."""
    raw = ApiToken.generate_key()
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:8], key_hash=hash_token(raw))
    return token, raw


def api_token_revoke(*, token_ids: list[int]) -> int:
    """Revoke tokens (idempotent); returns how many were newly revoked."""
    return ApiToken.objects.filter(id__in=token_ids, revoked_at__isnull=True).update(revoked_at=timezone.now())
