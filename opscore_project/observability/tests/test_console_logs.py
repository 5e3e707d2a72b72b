"""The developer console: `make run` on a terminal prints readable, coloured lines; piped, or with
LOG_FORMAT=json, it prints JSON (what production containers and log shippers get)."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import subprocess
import sys
from pathlib import Path

from opscore_project.launcher import choose_log_format
from opscore_project.observability.logs import PlainFormatter, colour_wanted

ROOT = Path(__file__).resolve().parents[3]
LOG_A_LINE = (
    "import logging; logging.getLogger('opscore.operations').warning("
    "'Task s1 failed', extra={'event_type': 'task.failed', 'session_id': 'sess-1', 'attempt': 2})"
)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record() -> logging.LogRecord:
    record = logging.LogRecord("opscore.operations", logging.WARNING, "x", 0, "Task %s failed", ("s1",), None)
    record.event_type = "task.failed"
    record.session_id = "sess-1"
    record.attempt = 2
    return record


def test_a_plain_line_shows_time_level_event_message_ids_and_extras():
    line = PlainFormatter(colour=False).format(_record())
    time_part, rest = line.split(" ", 1)
    assert len(time_part) == len("12:00:00.000")
    assert rest.split()[:2] == ["WARNING", "task.failed"]
    assert "Task s1 failed" in line and "session=sess-1" in line and '{"attempt":2}' in line
    assert "\x1b[" not in line


def test_colour_is_used_on_a_terminal_only_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour_wanted(_Terminal()) is True
    assert colour_wanted(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert colour_wanted(_Terminal()) is False
    coloured = PlainFormatter(colour=True).format(_record())
    assert "\x1b[33mWARNING" in coloured  # warnings in yellow


def test_make_run_picks_plain_on_a_terminal_and_keeps_json_otherwise():
    on_terminal: dict[str, str] = {}
    choose_log_format(on_terminal, _Terminal())
    assert on_terminal["LOG_FORMAT"] == "plain"
    piped: dict[str, str] = {}
    choose_log_format(piped, io.StringIO())
    assert "LOG_FORMAT" not in piped  # the settings default: json
    forced = {"LOG_FORMAT": "json"}
    choose_log_format(forced, _Terminal())
    assert forced["LOG_FORMAT"] == "json"


def _run_logging_process(log_format: str, *, terminal: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "LOG_FORMAT"}}
    env.update({"LOG_FORMAT": log_format, "DEBUG": "true", "TERM": "xterm"})
    args = [sys.executable, "manage.py", "shell", "-c", LOG_A_LINE]
    if not terminal:
        return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True).stderr
    leader, follower = pty.openpty()
    try:
        subprocess.run(args, cwd=ROOT, env=env, stderr=follower, stdout=subprocess.DEVNULL, timeout=60, check=True)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(leader)


def test_a_real_process_writes_coloured_lines_to_a_terminal_and_json_to_a_pipe():
    on_terminal = _run_logging_process("plain", terminal=True)
    assert "\x1b[33mWARNING" in on_terminal and "task.failed" in on_terminal and "session=sess-1" in on_terminal
    piped = _run_logging_process("json", terminal=False)
    line = json.loads(piped.strip().splitlines()[-1])
    assert line["level"] == "warning" and line["event_type"] == "task.failed" and line["session_id"] == "sess-1"
