"""Parse the timestamps AgentKit and its SDK send."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_iso_timestamp(value: object) -> datetime | None:
    """Return an aware datetime for an ISO-8601 string (``Z`` accepted), or None if it cannot be parsed.

    A timestamp without an offset is rejected: agents send ``datetime.now(timezone.utc).isoformat()``
    (contract section 2) and guessing a zone would silently reorder reports.
    """
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def parse_unix_or_iso(value: str) -> datetime | None:
    """Parse integer/float Unix seconds (the real AgentKit) or ISO-8601 (AgentKit's guide)."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return parse_iso_timestamp(text)
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
