"""JSON log lines and secret redaction, wired in ``settings.LOGGING``.

Every record carries the current request id (and agent/session/task ids when bound) from
``observability.context``, so one request's lines can be grepped together with its operation-log events.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

from opscore_project.observability.context import get_log_ids, get_request_id

# Attributes every LogRecord has; anything else was passed through ``extra=`` and goes into the line.
_RESERVED = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys() | {"message", "asctime", "taskName"}
)

_SECRET_KEY_RE = re.compile(r"(authorization|api[_-]?key|token|secret|password|passwd|cookie|signature)", re.I)
_SECRET_VALUE_RES = (
    # Ops-Core API tokens (``ock_…``) wherever they appear, with or without a scheme or key name
    (re.compile(r"\bock_[A-Za-z0-9_\-]{8,}"), "ock_[REDACTED]"),
    # "Bearer abc…" / "Token abc…" anywhere in a message
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=\-]{4,}"), r"\1 [REDACTED]"),
    # key=value / "key": "value" pairs whose key looks secret
    (
        re.compile(
            r"(?i)([\"']?(?:authorization|api[_-]?key|x-api-key|token|secret|password|signature)[\"']?\s*[:=]\s*)"
            r"([\"']?)[^\s\"',;&}]+"
        ),
        r"\1\2[REDACTED]",
    ),
)
REDACTED = "[REDACTED]"
# One cheap scan decides whether the substitutions above are needed at all (most lines have no secret).
_SECRET_HINT_RE = re.compile(r"(?i)bearer|token|basic|authorization|api[_-]?key|secret|password|signature|ock_")


def _known_secrets() -> list[str]:
    try:
        from django.conf import settings

        values = [
            settings.OPSCORE_API_KEY,
            settings.SECRET_KEY,
            getattr(settings, "OPSCORE_WEBHOOK_SECRET", ""),
            getattr(settings, "OPSCORE_CALLBACK_SECRET", ""),
        ]
    except Exception:  # noqa: BLE001 - logging must work before/without settings
        return []
    return [value for value in values if value and len(value) >= 6]


def redact_text(text: str) -> str:
    """Mask bearer tokens, secret-looking key/value pairs and the configured secrets in ``text``."""
    for secret in _known_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    if not _SECRET_HINT_RE.search(text):
        return text
    for pattern, replacement in _SECRET_VALUE_RES:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any, key: str = "") -> Any:
    """Redact a structured value: secret-named keys are masked whole, strings are scrubbed."""
    if key and _SECRET_KEY_RE.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, (int, float, bool)):
        return value
    if isinstance(value, dict):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


class RedactionFilter(logging.Filter):
    """Scrubs secrets from the message, its arguments and ``extra`` fields before any handler formats them."""

    # Lines whose every field Ops-Core builds itself from safe values (method, path, status, timings, URL ids):
    # skipping them keeps the per-request line cheap on the state-report hot path.
    trusted_loggers = frozenset({"opscore.request"})

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in self.trusted_loggers and not record.args and not record.exc_info:
            return True
        if record.args:
            try:
                record.msg = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string must not drop the line
                record.msg = f"{record.msg} {record.args!r}"
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        for key, value in list(vars(record).items()):
            if key not in _RESERVED:
                setattr(record, key, redact_value(value, key))
        # Django's request logger attaches the HttpRequest; its headers must never reach a formatter.
        if hasattr(record, "request"):
            record.request = f"{getattr(record.request, 'method', '')} {getattr(record.request, 'path', '')}"
        return True


class ContextFilter(logging.Filter):
    """Adds the current request id and bound ids (used by the plain formatter; JSON reads them itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = get_request_id() or "-"
        return True


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, bound ids, ``extra`` fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "") or get_request_id()
        if request_id and request_id != "-":
            line["request_id"] = request_id
        for key, value in get_log_ids().items():
            line.setdefault(key, value)
        for key, value in vars(record).items():
            if key not in _RESERVED and key != "request_id" and value not in (None, ""):
                line[key] = value
        if record.exc_info:
            line["exc"] = redact_text(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exc"] = redact_text(record.exc_text)
        return json.dumps(line, default=_json_default, separators=(",", ":"))


# Fields shown first, in this order, on a plain line (the ids that tie a line to a request, agent, session, task).
_PLAIN_IDS = ("request_id", "agent_id", "session_id", "task_id", "trace_id")
_LEVEL_COLOURS = {"DEBUG": "2", "INFO": "32", "WARNING": "33", "ERROR": "31", "CRITICAL": "1;31"}


def colour_wanted(stream: Any = None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org) or ``TERM=dumb``."""
    stream = sys.stderr if stream is None else stream
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


class PlainFormatter(logging.Formatter):
    """Human-readable lines for development (``LOG_FORMAT=plain``; ``make run`` on a terminal):
    ``time level event message ids extras`` — coloured when the console is a terminal.

    The event is the operation-log type when the line has one (``task.failed``), else the logger name.
    """

    def __init__(self, colour: bool | None = None) -> None:
        super().__init__()
        self.colour = colour_wanted() if colour is None else colour

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
        level = record.levelname
        fields = {k: v for k, v in vars(record).items() if k not in _RESERVED and v not in (None, "", "-")}
        request_id = fields.pop("request_id", None) or get_request_id()
        ids = {"request_id": request_id, **get_log_ids()}
        for key in _PLAIN_IDS:
            if key in fields:
                ids[key] = fields.pop(key)
        event = fields.pop("event_type", None) or record.name
        parts = [
            self._paint(when, "2"),
            self._paint(f"{level:<7}", _LEVEL_COLOURS.get(level, "0")),
            self._paint(f"{event:<22}", "36"),
            record.getMessage(),
        ]
        id_text = " ".join(f"{key.removesuffix('_id')}={value}" for key, value in ids.items() if value)
        if id_text:
            parts.append(self._paint(id_text, "35"))
        if fields:
            parts.append(self._paint(json.dumps(fields, default=_json_default, separators=(",", ":")), "2"))
        text = "  ".join(parts)
        if record.exc_info:
            text += "\n" + redact_text(self.formatException(record.exc_info))
        elif record.exc_text:
            text += "\n" + redact_text(record.exc_text)
        return text


SWEEP_TASK = "workflows.tasks.sweep"


class IdleSweepFilter(logging.Filter):
    """Drop the lines written every few seconds for the workflow sweep when it found nothing to do: beat's
    "Sending due task", the worker's "received", its trace span, and "succeeded … None" (the sweep returns None
    when idle). A sweep that did something still logs its result; warnings and errors always log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        if record.name in ("celery.beat", "opscore.trace"):
            return SWEEP_TASK not in record.getMessage()
        args = record.args if isinstance(record.args, dict) else {}
        if args.get("name") != SWEEP_TASK:
            return True
        if "return_value" in args:
            return args["return_value"] not in (None, "None")
        return "received" not in str(record.msg)
