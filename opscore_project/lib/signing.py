"""HMAC-SHA256 signatures shared by the AgentKit webhook and Ops-Core's outbound callbacks."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``timestamp + "." + body`` keyed with ``secret`` (contract 1b)."""
    message = timestamp.encode("utf-8") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_matches(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Constant-time check of ``signature`` against the expected one, over the raw body bytes."""
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected, (signature or "").strip().lower())


def secrets_equal(given: str, expected: str) -> bool:
    """Constant-time string comparison for API keys."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
