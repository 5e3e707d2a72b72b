"""Sending one alert notification: a signed webhook, a Slack-compatible incoming webhook, or an email.

Webhooks follow the completion callbacks' rules (workflows/callback_safety.py: https unless allowed, public
addresses only, the checked address pinned, no redirects, capped answer) and signature (``X-OpsCore-Timestamp``,
``X-OpsCore-Signature`` = hex HMAC-SHA256 of ``timestamp + "." + body``, keyed with OPSCORE_CALLBACK_SECRET, else
OPSCORE_WEBHOOK_SECRET). A failure is a short reason, never the remote body.
"""

from __future__ import annotations

import json
import smtplib
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from opscore_project.lib.signing import sign
from workflows.callback_safety import post_callback

REFUSED_PREFIX = "refused:"  # post_callback's reason for a URL the safety rules refuse: retrying cannot help


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    error: str  # empty on success

    @property
    def permanent(self) -> bool:
        return self.error.startswith(REFUSED_PREFIX)


def signing_secret() -> str:
    return settings.OPSCORE_CALLBACK_SECRET or settings.OPSCORE_WEBHOOK_SECRET


def webhook_body(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()


def slack_body(message: dict[str, Any]) -> bytes:
    """An incoming-webhook body (Slack, Mattermost, Rocket.Chat…): ``text`` plus one section block."""
    alert = message["alert"]
    icon = ":red_circle:" if message["event"] == "alert.firing" else ":large_green_circle:"
    state = "FIRING" if message["event"] == "alert.firing" else "RESOLVED"
    text = f"{icon} [{state}] {alert['ruleName']}: {alert['summary']}"
    return json.dumps(
        {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    ).encode()


def _post(url: str, body: bytes, *, signed: bool) -> SendResult:
    headers = {"Content-Type": "application/json", "User-Agent": "Ops-Core"}
    if signed:
        timestamp = str(int(time.time()))
        headers["X-OpsCore-Timestamp"] = timestamp
        secret = signing_secret()
        if secret:
            headers["X-OpsCore-Signature"] = sign(secret, timestamp, body)
    result = post_callback(url, body=body, headers=headers, timeout=settings.OPSCORE_CALLBACK_TIMEOUT_SECONDS)
    return SendResult(result.status_code, result.error)


def email_recipients(target: str) -> list[str]:
    return [address.strip() for address in target.split(",") if address.strip()]


def _email(target: str, message: dict[str, Any]) -> SendResult:
    alert = message["alert"]
    state = "FIRING" if message["event"] == "alert.firing" else "RESOLVED"
    subject = f"[Ops-Core {state}] {alert['ruleName']}: {alert['summary']}"[:200]
    lines = [
        alert["summary"],
        "",
        f"Rule: {alert['ruleName']} ({alert['condition']})",
        f"Subject: {alert['key']}",
        f"Fired at: {alert['firedAt']}",
    ]
    if alert.get("resolvedAt"):
        lines.append(f"Resolved at: {alert['resolvedAt']}")
    lines += ["", json.dumps(alert.get("details") or {}, indent=2, sort_keys=True)]
    try:
        send_mail(subject, "\n".join(lines), None, email_recipients(target), fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        return SendResult(None, f"email failed: {type(exc).__name__}")
    return SendResult(None, "")


def send(channel: str, target: str, message: dict[str, Any]) -> SendResult:
    """Send ``message`` (``{"event": "alert.firing"|"alert.resolved", "alert": {...}}``) once; never raises for
    network, HTTP or SMTP failures."""
    if channel == "webhook":
        return _post(target, webhook_body(message), signed=True)
    if channel == "slack":
        return _post(target, slack_body(message), signed=False)
    if channel == "email":
        return _email(target, message)
    return SendResult(None, f"unknown channel {channel!r}")
