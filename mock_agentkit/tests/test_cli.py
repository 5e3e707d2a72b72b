"""``python -m mock_agentkit`` end to end, and the agent spec helpers it uses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mock_agentkit.config import AgentSpec, MockConfig, default_agent_specs, load_agent_specs

from .conftest import API_KEY, WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_the_cli_serves_registers_agents_and_stops_cleanly_on_sigterm(opscore, tmp_path):
    port = free_port()
    config = tmp_path / "agents.json"
    config.write_text(
        json.dumps(
            [
                {"name": "cli-a", "capabilities": ["summarise"], "work_time": 0},
                {"name": "cli-b", "capabilities": "translate,classify", "silent": True},
            ]
        )
    )
    env = dict(
        os.environ,
        OPSCORE_API_URL=opscore.url,
        OPSCORE_API_KEY=API_KEY,
        OPSCORE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        MOCK_AGENTKIT_LISTING="on",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_agentkit", "--port", str(port), "--agent-port-start", "0"]
        + ["--agent-config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: len(requests.get(f"{url}/v1/agents", timeout=2).json()["data"]) == 2, 20, "2 agents")
        agents = {a["agentName"]: a for a in requests.get(f"{url}/v1/agents", timeout=2).json()["data"]}
        opscore.wait_until(lambda: len(opscore.webhooks()) == 2 and len(opscore.reports()) == 2, what="reports")
        agent_id = agents["cli-a"]["agentId"]
        body = {"senderId": "opscore", "messageType": "workflow_task", "payload": {"task_name": "summarise"}}
        assert requests.post(f"{url}/v1/agents/{agent_id}/run", json=body, timeout=5).status_code == 202
        opscore.wait_until(lambda: len(opscore.reports(agent_id)) == 3, what="active + idle")
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)

    assert proc.returncode == 0, output
    assert agents["cli-b"]["capabilities"] == ["translate", "classify"]
    assert agent_id in output  # the agent ids are printed
    assert f"http://127.0.0.1:{port}" in output


def test_the_cli_answers_404_for_listing_with_no_listing(opscore):
    port = free_port()
    env = dict(os.environ, OPSCORE_API_URL=opscore.url, OPSCORE_API_KEY=API_KEY)
    env.pop("OPSCORE_WEBHOOK_SECRET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_agentkit", "--port", str(port), "--agents", "0", "--no-listing"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{url}/health", timeout=2).status_code == 200, 20, "health")
        listing = requests.get(f"{url}/v1/agents", timeout=2)
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)

    assert listing.status_code == 404
    assert proc.returncode == 0, output


def test_default_specs_spread_capabilities_and_mark_the_last_ones_silent():
    specs = default_agent_specs(5, silent_fraction=0.4)

    assert [s.capabilities for s in specs] == [
        ["summarise"],
        ["translate"],
        ["classify"],
        ["summarise", "translate"],
        ["translate", "classify"],
    ]
    assert [s.silent for s in specs] == [False, False, False, True, True]
    assert len({s.name for s in specs}) == 5


def test_agent_specs_load_from_yaml(tmp_path):
    path = tmp_path / "agents.yaml"
    path.write_text("agents:\n  - name: y1\n    capabilities: [a, b]\n    failureRate: 0.5\n    metadata: {k: v}\n")

    assert load_agent_specs(path) == [AgentSpec("y1", ["a", "b"], failure_rate=0.5, metadata={"k": "v"})]


def test_bad_agent_specs_are_rejected(tmp_path):
    path = tmp_path / "agents.json"
    path.write_text(json.dumps([{"name": "x", "colour": "red"}]))
    with pytest.raises(ValueError, match="colour"):
        load_agent_specs(path)
    with pytest.raises(ValueError):
        AgentSpec("x", failure_rate=2)


def test_config_reads_the_environment():
    config = MockConfig.from_env(
        {"OPSCORE_API_URL": "http://opscore:9000/", "OPSCORE_WEBHOOK_SECRET": "s", "MOCK_AGENTKIT_LISTING": "off"}
    )

    assert config.effective_webhook_url == "http://opscore:9000/v1/opscore/internal/agent/notify"
    assert config.listing is False
    with pytest.raises(ValueError):
        MockConfig.from_env({"MOCK_AGENTKIT_LISTING": "maybe"})
