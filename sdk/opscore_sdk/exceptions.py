"""Exceptions raised by the Ops-Core client.

Every error answer from the API has one body (``{"status": "error", "code", "message", "errors"?}``); each
HTTP status the API uses maps to one exception class below, all under :class:`OpsCoreError`.
"""

from __future__ import annotations

from typing import Any


class OpsCoreError(Exception):
    """Base class of every error raised by ``opscore_sdk``.

    ``status_code`` is the HTTP status (``None`` when no answer arrived), ``message`` a one-line description,
    ``body`` the parsed JSON error body (or ``None``), ``code`` the API's error code (``validation_error`` …).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: Any = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body
        self.code = code

    def __str__(self) -> str:
        if self.status_code is not None:
            return f"{self.message} (HTTP {self.status_code})"
        return self.message


class APIError(OpsCoreError):
    """The server answered with an error status (4xx/5xx) not covered by a more specific class."""


class AuthenticationError(APIError):
    """401: the API key or token is missing or invalid."""


class PermissionDeniedError(APIError):
    """403: the credentials are valid but not allowed to do this."""


class NotFoundError(APIError):
    """404: the agent, definition, session or path does not exist."""


class ValidationError(APIError):
    """400: the request was rejected; ``errors`` maps field names to messages (may be empty)."""

    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.errors: dict[str, list[str]] = errors or {}

    def __str__(self) -> str:
        text = super().__str__()
        if self.errors:
            fields = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in self.errors.items())
            text = f"{text}: {fields}"
        return text


class ConflictError(APIError):
    """409: the request conflicts with the current state (a definition version with other content, a session
    that already ended, a retry of a session that did not fail)."""


class RateLimitedError(APIError):
    """429: too many requests; ``retry_after`` is the server's ``Retry-After`` in seconds (or ``None``)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the server failed or is unavailable (after any retries)."""


class OpsCoreConnectionError(OpsCoreError):
    """The server could not be reached (refused, DNS, reset) — after any retries."""


class OpsCoreTimeoutError(OpsCoreConnectionError):
    """The server did not answer within the client's timeout — after any retries."""


class SessionWaitTimeout(OpsCoreError):
    """:meth:`OpsCoreClient.wait_for_session` gave up before the session ended; ``session`` is the last seen."""

    def __init__(self, message: str, *, session: Any = None) -> None:
        super().__init__(message)
        self.session = session


_BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitedError,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; ``None`` if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import datetime, timezone
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # noqa: UP017 - keep 3.10 compatible
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())  # noqa: UP017


def error_from_response(status_code: int, body: Any, headers: Any = None, reason: str = "") -> APIError:
    """Build the exception for an error answer (``body`` is the parsed JSON or the raw text)."""
    message = ""
    code = None
    errors: dict[str, list[str]] = {}
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("detail") or "")
        code = body.get("code") if isinstance(body.get("code"), str) else None
        raw_errors = body.get("errors")
        if isinstance(raw_errors, dict):
            errors = {str(k): [str(m) for m in v] if isinstance(v, list) else [str(v)] for k, v in raw_errors.items()}
    elif isinstance(body, str) and body.strip() and len(body) < 200 and "<" not in body:
        message = body.strip()
    if not message:
        message = reason or f"HTTP {status_code}"
    kwargs: dict[str, Any] = {"status_code": status_code, "body": body, "code": code}
    if status_code >= 500:
        return ServerError(message, **kwargs)
    cls = _BY_STATUS.get(status_code, APIError)
    if cls is ValidationError:
        return ValidationError(message, errors=errors, **kwargs)
    if cls is RateLimitedError:
        retry_after = parse_retry_after((headers or {}).get("Retry-After"))
        return RateLimitedError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)
