"""The HTTP transport: one pooled ``requests`` session, retries with backoff, error mapping, safe logging."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from opscore_sdk._version import __version__
from opscore_sdk.exceptions import (
    OpsCoreConnectionError,
    OpsCoreTimeoutError,
    error_from_response,
    parse_retry_after,
)

logger = logging.getLogger("opscore_sdk")

RETRYABLE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried.

    ``retries`` is the number of extra attempts after the first. The wait before attempt *n* (1-based) is
    ``backoff_factor * 2**(n-1)`` capped at ``max_backoff``, with ±25 % jitter so many clients do not retry in
    lockstep; a ``Retry-After`` on a 503 is honoured up to ``max_backoff``.
    """

    retries: int = 3
    backoff_factor: float = 0.5
    max_backoff: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        base = min(self.backoff_factor * (2 ** (attempt - 1)), self.max_backoff)
        return base * random.uniform(0.75, 1.25)


class Transport:
    """Sends requests for :class:`~opscore_sdk.client.OpsCoreClient`; not part of the public API."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float,
        retry: RetryPolicy,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry
        self._sleep = sleep
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": f"opscore-sdk/{__version__}"})
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one API call and return the 2xx response, or raise the mapped :class:`OpsCoreError`.

        Retries connection errors, timeouts and 502/503/504 only when the call is idempotent: a GET, or a POST
        carrying an ``Idempotency-Key`` header (``idempotent`` overrides). A 4xx is never retried.
        """
        method = method.upper()
        headers = dict(headers or {})
        if idempotent is None:
            idempotent = method in {"GET", "HEAD", "OPTIONS"} or "Idempotency-Key" in headers
        url = self.base_url + path
        clean_params = {k: _param(v) for k, v in (params or {}).items() if v is not None and v != ""}
        # What we log: method and URL with its query; never headers (they carry the key).
        shown = f"{method} {url}" + (f"?{urlencode(clean_params)}" if clean_params else "")
        attempts = 1 + (self.retry.retries if idempotent else 0)
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = self.session.request(
                    method, url, params=clean_params or None, json=json, headers=headers or None, timeout=self.timeout
                )
            except requests.Timeout as exc:
                error: Exception = OpsCoreTimeoutError(f"Ops-Core did not answer within {self.timeout:g}s: {shown}")
                cause: Exception = exc
                retry_after = None
            except requests.ConnectionError as exc:
                error = OpsCoreConnectionError(f"Cannot connect to Ops-Core at {self.base_url}: {_reason(exc)}")
                cause = exc
                retry_after = None
            else:
                elapsed_ms = (time.monotonic() - started) * 1000
                logger.debug("%s -> %s (%.0f ms)", shown, response.status_code, elapsed_ms)
                if response.status_code < 400:
                    return response
                error = error_from_response(
                    response.status_code, _body(response), response.headers, response.reason or ""
                )
                cause = error
                if response.status_code not in RETRYABLE_STATUSES:
                    raise error
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt >= attempts:
                if attempts > 1:
                    logger.warning("%s failed after %d attempts: %s", shown, attempt, error)
                if error is cause:
                    raise error
                raise error from cause
            delay = self.retry.delay(attempt, retry_after)
            logger.info("%s failed (%s); retry %d/%d in %.2fs", shown, error, attempt, attempts - 1, delay)
            self._sleep(delay)


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _reason(exc: Exception) -> str:
    # requests nests urllib3 errors several levels deep; the innermost text is the useful one.
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "Connection reset", "No route to host"):
        if marker in text:
            return marker.lower()
    return text[:200]
