"""Lightweight performance tracing: spans written as structured log lines (no tracing backend needed).

- ``trace(name, **ids)``: a context manager timing a block as one span. Spans nest: the inner span's
  ``parent_span_id`` is the outer one, and all share the ``trace_id``.
- ``start_trace(task_id)`` / ``end_trace(task_id)``: a span that starts in one place (dispatch) and ends in
  another (completion), possibly in another process. The trace id is derived from the task id, so both ends
  agree without shared state; the duration comes from the start time recorded in this process or, across
  processes, from ``started_at`` passed by the caller (the task run's ``dispatched_at``).

Every span is one JSON line on logger ``opscore.trace``:
``{"msg": "span", "span": {"trace_id", "span_id", "parent_span_id", "name", "start", "duration_ms"}, ...ids}``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opscore_project.observability.context import bind_log_ids, reset_log_ids

logger = logging.getLogger("opscore.trace")


@dataclass
class Span:
    trace_id: str
    span_id: str
    name: str
    start: datetime
    parent_span_id: str = ""
    ids: dict[str, str] = field(default_factory=dict)
    duration_ms: float | None = None
    status: str = "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "name": self.name,
            "start": self.start.isoformat(timespec="microseconds"),
            "duration_ms": self.duration_ms,
            "status": self.status,
        }


current_span: ContextVar[Span | None] = ContextVar("opscore_current_span", default=None)

_open_task_spans: dict[str, tuple[Span, float]] = {}
_open_lock = threading.Lock()
_MAX_OPEN = 10_000


def _new_span_id() -> str:
    return uuid.uuid4().hex[:16]


def trace_id_for(task_id: str) -> str:
    """A stable 32-hex trace id for a task run, the same in every process."""
    return hashlib.sha256(f"opscore-task:{task_id}".encode()).hexdigest()[:32]


def _emit(span: Span) -> None:
    extra: dict[str, Any] = {"span": span.as_dict()}
    extra.update({key: value for key, value in span.ids.items() if key not in {"span"}})
    logger.info("span %s %.2fms", span.name, span.duration_ms or 0.0, extra=extra)


@contextmanager
def trace(name: str, **ids: Any) -> Iterator[Span]:
    """Time the enclosed block as a span named ``name``; ``ids`` (agent_id, session_id, task_id…) are added to
    the span line and to every log line written inside the block. An exception marks the span ``error``."""
    parent = current_span.get()
    clean_ids = {key: str(value) for key, value in ids.items() if value not in (None, "")}
    span = Span(
        trace_id=parent.trace_id if parent else uuid.uuid4().hex,
        span_id=_new_span_id(),
        name=name,
        start=datetime.now(tz=UTC),
        parent_span_id=parent.span_id if parent else "",
        ids=clean_ids,
    )
    started = time.perf_counter()
    span_token = current_span.set(span)
    ids_token = bind_log_ids(**clean_ids, trace_id=span.trace_id)
    try:
        yield span
    except BaseException:
        span.status = "error"
        raise
    finally:
        span.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        reset_log_ids(ids_token)
        current_span.reset(span_token)
        _emit(span)


def start_trace(task_id: str, name: str = "task", **ids: Any) -> Span:
    """Open the span of task run ``task_id`` (call at dispatch). Returns it; ``end_trace`` closes it."""
    span = Span(
        trace_id=trace_id_for(str(task_id)),
        span_id=_new_span_id(),
        name=name,
        start=datetime.now(tz=UTC),
        ids={"task_id": str(task_id), **{k: str(v) for k, v in ids.items() if v not in (None, "")}},
    )
    with _open_lock:
        if len(_open_task_spans) >= _MAX_OPEN:  # ends that never come (crashed workers) must not leak memory
            _open_task_spans.clear()
        _open_task_spans[str(task_id)] = (span, time.perf_counter())
    logger.info("trace start %s", name, extra={"span": {**span.as_dict(), "event": "start"}, **span.ids})
    return span


def end_trace(
    task_id: str, *, started_at: datetime | None = None, status: str = "ok", name: str = "task", **ids: Any
) -> Span:
    """Close the span of task run ``task_id`` and log it with its duration.

    If this process opened it, the duration is measured here; otherwise pass ``started_at`` (e.g. the task
    run's ``dispatched_at``) and the duration is computed from the wall clock.
    """
    with _open_lock:
        opened = _open_task_spans.pop(str(task_id), None)
    now = datetime.now(tz=UTC)
    if opened is not None:
        span, started = opened
        span.duration_ms = round((time.perf_counter() - started) * 1000, 3)
    else:
        start = started_at or now
        span = Span(
            trace_id=trace_id_for(str(task_id)),
            span_id=_new_span_id(),
            name=name,
            start=start,
            ids={"task_id": str(task_id)},
            duration_ms=round((now - start).total_seconds() * 1000, 3),
        )
    span.status = status
    span.ids.update({k: str(v) for k, v in ids.items() if v not in (None, "")})
    _emit(span)
    return span


def record_span(
    name: str, *, start: datetime, duration_ms: float, status: str = "ok", trace_id: str = "", **ids: Any
) -> Span:
    """Log a span measured elsewhere (e.g. a Celery task, timed by its prerun/postrun signals)."""
    span = Span(
        trace_id=trace_id or uuid.uuid4().hex,
        span_id=_new_span_id(),
        name=name,
        start=start,
        ids={k: str(v) for k, v in ids.items() if v not in (None, "")},
        duration_ms=round(duration_ms, 3),
        status=status,
    )
    _emit(span)
    return span
