"""Human output for the CLI: colours (only on a terminal, never with ``NO_COLOR``), aligned tables, times,
and the live progress display of a session."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

from opscore_sdk.models import Session, TaskRun

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}

_STATUS_COLOURS = {
    "completed": "green",
    "idle": "green",
    "ok": "green",
    "info": "green",
    "failed": "red",
    "error": "red",
    "timed_out": "red",
    "running": "cyan",
    "active": "cyan",
    "dispatched": "cyan",
    "pending": "yellow",
    "waiting_for_input": "yellow",
    "rejected": "red",
    "initializing": "yellow",
    "warning": "yellow",
    "cancelled": "dim",
    "skipped": "dim",
    "finished": "dim",
    "debug": "dim",
}

_TASK_ICONS = {
    "completed": "✓",
    "failed": "✗",
    "timed_out": "✗",
    "cancelled": "-",
    "skipped": "-",
    "running": "▶",
    "dispatched": "→",
    "pending": "·",
    "waiting_for_input": "?",
    "rejected": "✗",
}


def supports_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR", "") != "":
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Style:
    """Wraps text in ANSI colours when enabled, returns it unchanged otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles or not text:
            return text
        codes = ";".join(_CODES[s] for s in styles if s in _CODES)
        return f"\x1b[{codes}m{text}\x1b[0m" if codes else text

    def status(self, value: str | None) -> str:
        text = value or "-"
        colour = _STATUS_COLOURS.get(text)
        return self(text, colour) if colour else text


def visible_len(text: str) -> int:
    return len(_ANSI.sub("", text))


def truncate(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], style: Style) -> str:
    """Columns aligned on the visible width of each cell (colour codes do not count)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], visible_len(cell))
    lines = ["  ".join(style(h.ljust(widths[i]), "bold") for i, h in enumerate(headers)).rstrip()]
    for row in rows:
        cells = [cell + " " * (widths[i] - visible_len(cell)) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def key_values(pairs: Sequence[tuple[str, str]], style: Style) -> str:
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{style(k.ljust(width), 'bold')}  {v}" for k, v in pairs)


def fmt_time(value: datetime | None) -> str:
    """UTC, to the second: ``2026-11-24 09:00:00Z``."""
    if value is None:
        return "-"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")  # noqa: UP017


def fmt_age(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago: ``12s ago``, ``5m ago``, ``3h ago``, ``2d ago``."""
    if value is None:
        return "-"
    seconds = int(((now or datetime.now(timezone.utc)) - value).total_seconds())  # noqa: UP017
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def fmt_duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def fmt_value(value: Any, width: int = 60) -> str:
    """A compact one-line rendering of a JSON value."""
    if value is None or value == "" or value == {} or value == []:
        return "-"
    if isinstance(value, str):
        return truncate(value, width)
    import json

    return truncate(json.dumps(value, ensure_ascii=False, default=str), width)


def task_duration_ms(task: TaskRun, now: datetime | None = None) -> float | None:
    if task.duration_ms is not None:
        return task.duration_ms
    if task.started_at and (task.ended_at or not task.is_finished):
        end = task.ended_at or now or datetime.now(timezone.utc)  # noqa: UP017
        return (end - task.started_at).total_seconds() * 1000
    return None


def session_elapsed_ms(session: Session, now: datetime | None = None) -> float | None:
    total = session.timings.get("totalMs") if isinstance(session.timings, dict) else None
    if total is not None and session.is_finished:
        return total
    start = session.started_at or session.created_at
    if start is None:
        return None
    end = session.ended_at or now or datetime.now(timezone.utc)  # noqa: UP017
    return (end - start).total_seconds() * 1000


def task_rows(session: Session, style: Style) -> list[list[str]]:
    rows = []
    for task in session.tasks:
        icon = _TASK_ICONS.get(task.status, "?")
        error = fmt_value(task.error, 50) if task.error else ""
        note = style(error, "red") if error else ""
        if not error and task.waiting_reason:
            note = style(f"waiting: {task.waiting_reason}", "dim")
        rows.append(
            [
                style(icon, _STATUS_COLOURS.get(task.status, "")),
                task.task_id,
                str(task.attempt),
                style.status(task.status),
                task.agent_id or "-",
                fmt_duration(task_duration_ms(task)),
                note,
            ]
        )
    return rows


TASK_HEADERS = ["", "TASK", "TRY", "STATUS", "AGENT", "TIME", "ERROR / WAITING FOR"]


def session_summary_line(session: Session, style: Style) -> str:
    version = f" v{session.workflow_version}" if session.workflow_version else ""
    elapsed = fmt_duration(session_elapsed_ms(session))
    return (
        f"Session {style(session.session_id, 'bold')}  workflow {session.workflow_id}{version}  "
        f"{style.status(session.status)}  {elapsed}"
    )


def waiting_tasks(session: Session) -> list[TaskRun]:
    return [task for task in session.tasks if task.status == "waiting_for_input"]


def waiting_line(task: TaskRun) -> str:
    """``waiting for input: <prompt>`` (what ``run --wait`` shows while a person has to act)."""
    return f"waiting for input: {task.prompt or task.task_id}"


class ProgressDisplay:
    """Shows a session's tasks while it runs.

    On a terminal the block is redrawn in place (cursor up + clear); otherwise one plain line is written per
    change (a task or the session changing status), so logs and pipes get a readable record.
    """

    def __init__(self, stream: TextIO, style: Style, *, live: bool) -> None:
        self.stream = stream
        self.style = style
        self.live = live
        self._drawn_lines = 0
        self._seen: dict[str, str] = {}

    def update(self, session: Session) -> None:
        if self.live:
            self._redraw(session)
        else:
            self._plain(session)
        self.stream.flush()

    def _redraw(self, session: Session) -> None:
        lines = [session_summary_line(session, self.style)]
        if session.tasks:
            rendered = table(TASK_HEADERS, task_rows(session, self.style), self.style)
            lines += ["  " + line for line in rendered.split("\n")]
        else:
            lines.append(self.style("  (no task has started yet)", "dim"))
        lines += ["  " + self.style(waiting_line(task), "yellow") for task in waiting_tasks(session)]
        if self._drawn_lines:
            self.stream.write(f"\x1b[{self._drawn_lines}F\x1b[J")
        self.stream.write("\n".join(lines) + "\n")
        self._drawn_lines = len(lines)

    def _plain(self, session: Session) -> None:
        if self._seen.get("session") != session.status:
            self._seen["session"] = session.status
            self.stream.write(f"session {session.session_id} {session.status}\n")
        for task in session.tasks:
            key = task.task_run_id or f"{task.task_id}#{task.attempt}"
            if self._seen.get(key) == task.status:
                continue
            self._seen[key] = task.status
            if task.status == "waiting_for_input":
                self.stream.write(f"task {task.task_id}  {waiting_line(task)}\n")
                continue
            parts = [f"task {task.task_id}", f"attempt {task.attempt}", task.status]
            if task.agent_id:
                parts.append(f"agent {task.agent_id}")
            duration = task_duration_ms(task) if task.is_finished else None
            if duration is not None:
                parts.append(fmt_duration(duration))
            if task.error:
                parts.append(f"error {fmt_value(task.error, 120)}")
            self.stream.write("  ".join(parts) + "\n")
