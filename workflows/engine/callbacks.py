"""Completion callbacks: a signed POST of the ended session's summary to its ``callbackUrl``."""

from __future__ import annotations

import json
import time

from django.conf import settings

from opscore_project.lib.signing import sign
from opscore_project.observability import events
from opscore_project.observability.oplog import log_operation
from workflows.callback_safety import post_callback
from workflows.models import CallbackDelivery

# Redis redelivers an unacknowledged message after the visibility timeout: never schedule a retry further out.
MAX_COUNTDOWN_SECONDS = 3000


def callback_deliver(*, session_id: str, attempt: int) -> CallbackDelivery | None:
    """POST the ended session's summary to its callbackUrl once, signed; record the attempt.

    Signed like the AgentKit webhook: ``X-OpsCore-Signature`` = hex HMAC-SHA256 of ``timestamp + "." + body``
    keyed with OPSCORE_CALLBACK_SECRET (else OPSCORE_WEBHOOK_SECRET). Returns None if already attempted.
    """
    from workflows.selectors import session_detail, session_get

    session = session_get(session_id=session_id)
    if session is None or not session.callback_url or session.is_active:
        return None
    if CallbackDelivery.objects.filter(session=session, attempt=attempt).exists():
        return None  # a redelivered message: this attempt already happened
    body = json.dumps({"event": "session.ended", "session": session_detail(session)}, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-OpsCore-Timestamp": timestamp, "User-Agent": "Ops-Core"}
    secret = settings.OPSCORE_CALLBACK_SECRET or settings.OPSCORE_WEBHOOK_SECRET
    if secret:
        headers["X-OpsCore-Signature"] = sign(secret, timestamp, body)
    started = time.monotonic()
    # SSRF rules, pinned address, no redirects, capped answer; a short reason, never the remote body.
    result = post_callback(
        session.callback_url, body=body, headers=headers, timeout=settings.OPSCORE_CALLBACK_TIMEOUT_SECONDS
    )
    status_code, error = result.status_code, result.error
    delivery, _ = CallbackDelivery.objects.get_or_create(
        session=session,
        attempt=attempt,
        defaults={
            "url": session.callback_url,
            "status_code": status_code,
            "success": not error,
            "error": error,
            "duration_ms": int((time.monotonic() - started) * 1000),
        },
    )
    if error and attempt >= settings.OPSCORE_CALLBACK_MAX_ATTEMPTS:
        log_operation(
            events.CALLBACK_FAILED,
            {"url": session.callback_url, "attempts": attempt, "error": error},
            level="error",
            message=f"Completion callback failed for good after {attempt} attempt(s): {error}",
            session_id=str(session.id),
        )
    return delivery
