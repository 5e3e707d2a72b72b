"""``wait_for_session`` and the CLI's progress display, on scripted session answers.

The live-server versions are in ``test_client_workflows.py`` / ``test_cli_workflows.py``; these pin down the
polling and rendering logic with exact sequences of task states.
"""

from __future__ import annotations

import io
import json

import pytest
from opscore_sdk import OpsCoreClient, SessionWaitTimeout
from opscore_sdk.cli import main

from sdk.tests.faults import FaultServer, Reply

STARTED = {"sessionId": "s-1", "workflowId": "wf", "workflowVersion": "1", "message": "Workflow started."}


def session(status: str, *tasks: tuple[str, str], error: object = None) -> dict:
    return {
        "sessionId": "s-1",
        "workflowId": "wf",
        "workflowVersion": "1",
        "agentId": None,
        "status": status,
        "startedAt": "2026-11-24T09:00:00Z",
        "endedAt": "2026-11-24T09:00:03Z" if status in {"completed", "failed", "cancelled"} else None,
        "error": error,
        "initialPayload": {},
        "createdAt": "2026-11-24T09:00:00Z",
        "timings": {"queueWaitMs": 5, "runMs": 2995, "totalMs": 3000},
        "tasks": [
            {
                "taskRunId": f"tr-{task_id}",
                "taskId": task_id,
                "attempt": 1,
                "status": task_status,
                "agentId": "agent-1",
                "startedAt": "2026-11-24T09:00:01Z",
                "endedAt": "2026-11-24T09:00:02Z" if task_status == "completed" else None,
                "durationMs": 1000 if task_status == "completed" else None,
                "error": "agent said no" if task_status == "failed" else None,
            }
            for task_id, task_status in tasks
        ],
    }


RUNNING_1 = Reply(200, session("running", ("step_1", "running")))
RUNNING_2 = Reply(200, session("running", ("step_1", "completed"), ("step_2", "dispatched")))
COMPLETED = Reply(200, session("completed", ("step_1", "completed"), ("step_2", "completed")))
FAILED = Reply(200, session("failed", ("step_1", "completed"), ("step_2", "failed"), error="step_2 failed"))


def test_wait_for_session_polls_until_the_end():
    seen = []
    with FaultServer(RUNNING_1, RUNNING_2, COMPLETED) as server, OpsCoreClient(server.url, "k") as client:
        final = client.wait_for_session("s-1", timeout=10, poll_interval=0.01, on_update=seen.append)
    assert final.status == "completed" and final.is_finished
    assert [s.status for s in seen] == ["running", "running", "completed"]
    assert [t.status for t in final.tasks] == ["completed", "completed"]
    assert final.tasks[0].ended_at.tzinfo is not None


def test_wait_for_session_returns_a_failed_session_too():
    with FaultServer(RUNNING_1, FAILED) as server, OpsCoreClient(server.url, "k") as client:
        final = client.wait_for_session("s-1", timeout=10, poll_interval=0.01)
    assert final.status == "failed"
    assert final.error == "step_2 failed"


def test_wait_for_session_raises_on_timeout_with_the_last_session():
    with FaultServer(RUNNING_1) as server, OpsCoreClient(server.url, "k") as client:
        with pytest.raises(SessionWaitTimeout) as info:
            client.wait_for_session("s-1", timeout=0.2, poll_interval=0.05)
    assert info.value.session.status == "running"
    assert "s-1" in str(info.value)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_wait_prints_plain_progress_lines_off_a_terminal(capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    with FaultServer(Reply(202, STARTED), RUNNING_1, RUNNING_2, COMPLETED) as server:
        code, out, _ = run(capsys, "--api-url", server.url, "--api-key", "k", "run", "wf", "--wait", "--interval", "0")
    assert code == 0
    lines = out.splitlines()
    assert "Started session s-1" in lines[0]
    assert "task step_1  attempt 1  running  agent agent-1" in lines
    assert "task step_1  attempt 1  completed  agent agent-1  1.0s" in lines
    assert "task step_2  attempt 1  dispatched  agent agent-1" in lines
    assert lines.count("session s-1 running") == 1  # one line per change, not per poll
    assert "completed" in lines[-1] and "3.0s" in lines[-1]
    assert "\x1b[" not in out
    body = json.loads(server.seen[0].body)
    assert server.seen[0].path == "/v1/opscore/workflows/wf/run"
    assert body == {"initialPayload": {}}


def test_run_wait_exits_1_when_the_session_fails(capsys):
    with FaultServer(Reply(202, STARTED), FAILED) as server:
        code, out, _ = run(capsys, "--api-url", server.url, "--api-key", "k", "run", "wf", "--wait", "--interval", "0")
    assert code == 1
    assert "error: step_2 failed" in out
    assert "task step_2  attempt 1  failed  agent agent-1  error agent said no" in out


def test_run_wait_with_json_prints_only_the_final_session(capsys):
    with FaultServer(Reply(202, STARTED), RUNNING_1, COMPLETED) as server:
        code, out, _ = run(
            capsys, "--api-url", server.url, "--api-key", "k", "--json", "run", "wf", "--wait", "--interval", "0"
        )
    assert code == 0
    assert json.loads(out)["status"] == "completed"


def test_run_wait_timeout_exits_10(capsys):
    with FaultServer(Reply(202, STARTED), RUNNING_1) as server:
        code, _, err = run(
            capsys, "--api-url", server.url, "--api-key", "k", "run", "wf", "--wait", "--interval", "0.05",
            "--timeout-wait", "0.2",
        )  # fmt: skip
    assert code == 10
    assert "still running" in err


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_progress_block_is_redrawn_in_place(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    tty = FakeTTY()
    monkeypatch.setattr("sys.stdout", tty)
    with FaultServer(Reply(202, STARTED), RUNNING_1, RUNNING_2, COMPLETED) as server:
        code = main(["--api-url", server.url, "--api-key", "k", "sessions", "watch", "s-1", "--interval", "0"])
    out = tty.getvalue()
    assert code == 0
    assert out.count("\x1b[J") >= 2  # cursor up + clear before each redraw
    assert "\x1b[32m" in out  # green for completed
    assert "✓" in out


def test_run_merges_params_into_the_payload_and_sends_the_agent(capsys):
    with FaultServer(Reply(202, STARTED)) as server:
        code, out, _ = run(
            capsys, "--api-url", server.url, "--api-key", "k", "--json", "run", "wf", "--agent", "agent-7",
            "--payload", '{"text": "hello", "n": 1}', "--param", "n=2", "--param", "lang=fr",
            "--idempotency-key", "abc",
        )  # fmt: skip
    assert code == 0
    assert json.loads(out)["sessionId"] == "s-1"
    body = json.loads(server.seen[0].body)
    assert body == {"initialPayload": {"text": "hello", "n": 2, "lang": "fr"}, "agentId": "agent-7"}
    assert server.seen[0].headers["Idempotency-Key"] == "abc"


def test_run_with_agent_and_capability_is_a_usage_error(capsys):
    code, _, err = run(capsys, "run", "wf", "--agent", "a", "--capability", "c")
    assert code == 2
    assert "not allowed with" in err


def test_a_bad_param_is_a_usage_error(capsys):
    code, _, err = run(capsys, "--api-key", "k", "run", "wf", "--param", "novalue")
    assert code == 2
    assert "key=value" in err
