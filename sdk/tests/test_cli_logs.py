"""``opscore logs`` against a live Ops-Core."""

from __future__ import annotations

import json
import threading
import time

import pytest
from opscore_sdk.cli import main

from sdk.tests.conftest import needs_events_api

pytestmark = [pytest.mark.django_db(transaction=True), needs_events_api]


@pytest.fixture
def log():
    from opscore_project.observability.oplog import log_operation

    def _log(event_type: str, **kwargs):
        return log_operation(event_type, {"n": 1}, **kwargs)

    return _log


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_logs_prints_events_oldest_first(capsys, cli_env, log):
    log("cli.first", agent_id="agent-1", message="first thing")
    log("cli.second", agent_id="agent-1", session_id="s-1", level="error", message="second thing")
    code, out, _ = run(capsys, "logs", "--agent", "agent-1")
    assert code == 0
    lines = [line for line in out.splitlines() if "cli." in line]
    assert "cli.first" in lines[0] and "first thing" in lines[0]
    assert "cli.second" in lines[1] and "error" in lines[1] and "session=s-1" in lines[1]


def test_logs_filters_and_json(capsys, cli_env, log):
    log("cli.a", level="warning", message="careful")
    log("cli.b", message="fine")
    code, out, _ = run(capsys, "--json", "logs", "--level", "warning", "--type", "cli.a", "--since", "5m")
    assert code == 0
    assert [e["eventType"] for e in json.loads(out)] == ["cli.a"]


def test_logs_with_no_events(capsys, cli_env):
    code, out, _ = run(capsys, "logs", "--type", "nothing.here")
    assert (code, out.strip()) == (0, "No events.")


def test_logs_follow_prints_new_events_as_json_lines(capsys, cli_env, log):
    log("cli.follow", message="backlog")

    def produce():
        time.sleep(0.3)
        log("cli.follow", message="live")

    producer = threading.Thread(target=produce)
    producer.start()
    code, out, _ = run(
        capsys, "--json", "logs", "--type", "cli.follow", "--follow", "--interval", "0.05", "--follow-for", "1.5"
    )
    producer.join()
    assert code == 0
    assert [json.loads(line)["message"] for line in out.splitlines()] == ["backlog", "live"]


def test_logs_with_a_bad_level_exits_7(capsys, cli_env):
    code, _, err = run(capsys, "logs", "--level", "loud")
    assert code == 7
    assert "level" in err
