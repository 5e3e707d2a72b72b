"""Rate limits, counted in the default cache (Redis; per-process memory in embedded mode).

- Failed authentication per client address (``OPSCORE_THROTTLE_FAILED_AUTH``): once an address exceeds the limit,
  every Bearer request from it answers 429 with ``Retry-After`` until the window ends. Counting happens only on
  failures, and the block is remembered in process memory, so a request with a valid key costs no cache round
  trip (the state report path stays as fast as before). Another process learns of the block at the address's
  next failure there.
- Writes per API key or user (``OPSCORE_THROTTLE_WRITES``): DRF's ``SimpleRateThrottle`` on non-safe methods of
  DRF views. State reports on the Bearer fast path are not counted (they are the agents' heartbeat).

Cache errors never fail a request: a limiter that cannot count lets the request through and logs a warning.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)

BLOCKED_MESSAGE = "Too many failed authentication attempts from this address; try again later."

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """``"30/minute"`` → ``(30, 60)``; empty → None (no limit)."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


def client_address(meta) -> str:
    """The client's address: ``REMOTE_ADDR``, or the address ``NUM_PROXIES`` trusted proxies saw (DRF's rule)."""
    remote = meta.get("REMOTE_ADDR") or "unknown"
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES")
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded:
        addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
        if addresses:
            return addresses[-min(proxies, len(addresses))]
    return remote


class _Blocks:
    """Addresses this process knows to be blocked, with the monotonic time the block ends."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def remaining(self, address: str) -> float | None:
        until = self._until.get(address)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            with self._lock:
                self._until.pop(address, None)
            return None
        return left

    def add(self, address: str, seconds: float) -> None:
        with self._lock:
            if len(self._until) > 10_000:
                self._until.clear()
            self._until[address] = time.monotonic() + seconds

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


blocked_addresses = _Blocks()


def refuse_if_blocked(address: str) -> None:
    """Raise DRF's Throttled (429 + Retry-After) when ``address`` is blocked in this process."""
    left = blocked_addresses.remaining(address)
    if left is not None:
        from rest_framework.exceptions import Throttled

        raise Throttled(wait=max(1, int(left + 0.999)), detail=BLOCKED_MESSAGE)


def blocked_wait(address: str) -> int | None:
    """Seconds until ``address`` may try again, or None when it is not blocked (for non-DRF callers)."""
    left = blocked_addresses.remaining(address)
    return None if left is None else max(1, int(left + 0.999))


def record_failed_auth(address: str) -> int | None:
    """Count one failed authentication from ``address``; return the wait in seconds if it is now blocked."""
    limit = parse_rate(settings.OPSCORE_THROTTLE_FAILED_AUTH)
    if limit is None:
        return None
    count_limit, period = limit
    now = time.time()
    window = int(now // period)
    key = f"{settings.OPSCORE_CACHE_NAMESPACE}:throttle:failed-auth:{address}:{window}"
    try:
        cache.add(key, 0, timeout=period + 1)
        count = cache.incr(key)
    except Exception:
        logger.warning("Failed-authentication counter unavailable; not limiting", exc_info=True)
        return None
    if count <= count_limit:
        return None
    wait = (window + 1) * period - now
    blocked_addresses.add(address, wait)
    if count == count_limit + 1:
        logger.warning(
            "Blocking API-key authentication from %s for %ds after %d failures",
            address,
            int(wait),
            count_limit,
            extra={"client": address},
        )
    return max(1, int(wait + 0.999))


class WriteRateThrottle(SimpleRateThrottle):
    """Writes per API key (the shared key counts as one) or per logged-in user."""

    scope = "writes"

    def get_rate(self) -> str | None:
        return settings.OPSCORE_THROTTLE_WRITES or None

    def get_cache_key(self, request, view) -> str | None:
        if request.method in SAFE_METHODS:
            return None
        user = request.user
        ident = getattr(user, "throttle_ident", None)
        if ident is None:
            if not getattr(user, "is_authenticated", False):
                return None
            ident = f"user:{user.pk}"
        return f"{settings.OPSCORE_CACHE_NAMESPACE}:throttle:writes:{ident}"

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("Write rate counter unavailable; not limiting", exc_info=True)
            return True
