"""The sample agent (examples/agent/agent.py) against a live stack: it joins, takes a workflow's tasks (failing one
attempt on request, so a retry is seen), reports per the contract, and leaves on SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from opscore_project.testing import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "agent" / "agent.py"

DEFINITION = {
    "id": "sample_agent_check",
    "version": "1.0",
    "tasks": [
        {
            "taskId": "summarise",
            "agentCapability": "summarise",
            "maxRetries": 1,
            "retryBackoffSeconds": 0.2,
            "parameters": {"text": "{{ payload.text }}", "fail_times": "{{ payload.fail_times }}"},
        }
    ],
}


class RunningAgent:
    """The agent as a separate process, started the way a user would (isolated: nothing from this repository on
    its import path), with its output collected line by line."""

    def __init__(self, stack, *args: str, tmp_path: Path) -> None:
        env = {
            "PATH": "/usr/bin:/bin",
            "AGENTKIT_API_URL": stack.mock.url,
            "OPSCORE_API_URL": stack.url,
            "OPSCORE_API_KEY": stack.api_key,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(AGENT), *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture
def agent(live_stack, tmp_path):
    running = RunningAgent(live_stack, "--capability", "summarise", "--work-time", "0.1", tmp_path=tmp_path)
    yield running
    running.stop()


def api(stack, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {stack.operator_token}"}  # operator calls; the agent uses the shared key
    return requests.request(method, f"{stack.url}{path}", headers=headers, timeout=10, **kwargs)


def test_the_sample_agent_joins_takes_tasks_and_leaves(live_stack, agent):
    line = wait_until(lambda: next((x for x in agent.lines if "registered" in x), None), message=agent.output())
    agent_id = line.split(" as ")[1].split()[0]
    # Known to Ops-Core through its state report (which announces its capabilities) and AgentKit's webhook (whose
    # capabilities then replace the announced ones): idle, with its capability.
    known = wait_until(
        lambda: (
            (a := api(live_stack, "GET", f"/v1/opscore/agents/{agent_id}").json()).get("capabilitiesSource")
            == "webhook"
            and a
        ),
        message="the agent to be registered with its capabilities",
    )
    assert known["capabilities"] == ["summarise"] and known["state"] == "idle" and known["registered"]

    assert api(live_stack, "POST", "/v1/opscore/workflows", json=DEFINITION).status_code == 201
    started = api(
        live_stack,
        "POST",
        "/v1/opscore/workflows/sample_agent_check/run",
        json={"initialPayload": {"text": "Ops-Core runs workflows. It also watches agents.", "fail_times": 1}},
    )
    assert started.status_code == 202, started.text
    session_id = started.json()["sessionId"]
    session = wait_until(
        lambda: (
            (s := api(live_stack, "GET", f"/v1/opscore/sessions/{session_id}").json())["status"]
            in {"completed", "failed"}
            and s
        ),
        timeout=60,
        message=f"session {session_id} to end; agent output:\n{agent.output()}",
    )
    assert session["status"] == "completed", session
    attempts = [(t["attempt"], t["status"], t["agentId"]) for t in session["tasks"]]
    assert attempts == [(1, "failed", agent_id), (2, "completed", agent_id)]
    assert "ASKED_TO_FAIL" in session["tasks"][0]["error"]
    assert session["tasks"][1]["result"] == {
        "task_name": "summarise",
        "agent": known["name"],
        "summary": "Ops-Core runs workflows",
    }

    # Its reports, oldest first: idle on joining, then active/error/idle and active/idle for the two attempts.
    history = api(live_stack, "GET", f"/v1/opscore/agents/{agent_id}/history").json()["results"]
    assert [h["state"] for h in reversed(history)] == ["idle", "active", "error", "idle", "active", "idle"]

    assert agent.stop() == 0
    assert f"deregistered {agent_id}" in agent.output()
    left = wait_until(
        lambda: not (a := api(live_stack, "GET", f"/v1/opscore/agents/{agent_id}").json())["registered"] and a,
        message="the DEREGISTER webhook",
    )
    assert left["state"] == "finished"


def test_the_sample_agent_refuses_to_start_without_a_key(tmp_path):
    result = subprocess.run(
        [sys.executable, "-I", str(AGENT), "--capability", "summarise"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "OPSCORE_API_KEY" in result.stderr
