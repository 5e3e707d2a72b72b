"""The ids of the operation in progress (request id, agent, session, trace), shared by logs and events.

Context variables rather than thread locals: they follow the request through gthread workers and are reset by
the middleware (and the Celery signal handlers) when the work ends, so ids never leak into the next request.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token
from typing import Any

request_id_var: ContextVar[str] = ContextVar("opscore_request_id", default="")
log_ids_var: ContextVar[dict[str, str] | None] = ContextVar("opscore_log_ids", default=None)

# Incoming X-Request-ID values are echoed into logs and headers: only a short, safe charset is accepted.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{8,64}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> str | None:
    """``value`` if it is an acceptable request id (8-64 chars of ``A-Za-z0-9._:-``), else None."""
    if value and _REQUEST_ID_RE.match(value):
        return value
    return None


def get_request_id() -> str:
    return request_id_var.get()


def set_request_id(value: str) -> Token[str]:
    return request_id_var.set(value)


def get_log_ids() -> dict[str, str]:
    """Extra ids (agent_id, session_id, task_id) bound to the current request or task."""
    return log_ids_var.get() or {}


def bind_log_ids(**ids: Any) -> Token[dict[str, str] | None]:
    """Add ids to every log line of the current request/task; returns a token for ``reset_log_ids``."""
    merged = dict(get_log_ids())
    merged.update({key: str(value) for key, value in ids.items() if value not in (None, "")})
    return log_ids_var.set(merged)


def reset_log_ids(token: Token[dict[str, str] | None]) -> None:
    log_ids_var.reset(token)
