"""Carry the request id into Celery tasks, so a task's log lines and events share the id of the request that
enqueued it (or the task id when it was not started by a request: beat, retries of old messages)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from celery import signals

from opscore_project.observability.context import (
    bind_log_ids,
    request_id_var,
    reset_log_ids,
    valid_request_id,
)
from opscore_project.observability.tracing import record_span

HEADER = "opscore_request_id"
_tokens: dict[str, tuple[Any, Any, datetime, float]] = {}


@signals.before_task_publish.connect(weak=False)
def _add_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = request_id_var.get()
    if headers is not None and request_id and HEADER not in headers:
        headers[HEADER] = request_id


@signals.task_prerun.connect(weak=False)
def _bind_request_id(task_id: str = "", task: Any = None, **_: Any) -> None:
    incoming = getattr(getattr(task, "request", None), HEADER, None) if task is not None else None
    request_id = valid_request_id(incoming) or valid_request_id(task_id) or (task_id or "")[:64]
    _tokens[task_id] = (
        request_id_var.set(request_id),
        bind_log_ids(celery_task=getattr(task, "name", "")),
        datetime.now(tz=UTC),
        time.perf_counter(),
    )


@signals.task_postrun.connect(weak=False)
def _unbind_request_id(task_id: str = "", task: Any = None, state: str | None = None, **_: Any) -> None:
    tokens = _tokens.pop(task_id, None)
    if tokens is None:
        return
    id_token, ids_token, started_at, started = tokens
    # One span per task execution, with the ids still bound (request id of the enqueuing request).
    record_span(
        f"celery.{getattr(task, 'name', 'task')}",
        start=started_at,
        duration_ms=(time.perf_counter() - started) * 1000,
        status="ok" if state in (None, "SUCCESS") else str(state).lower(),
        celery_task_id=task_id,
    )
    try:
        reset_log_ids(ids_token)
        request_id_var.reset(id_token)
    except ValueError:  # a token from another context (pool quirks): just clear
        request_id_var.set("")
