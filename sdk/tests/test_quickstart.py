"""The README's example (``sdk/examples/quickstart.py``) runs as written against a stack like ``make run``:
live Ops-Core, a worker, the mock AgentKit with 5 simulated agents, the sample workflow loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdk.tests.conftest import needs_bridge, needs_workflow_api

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, needs_workflow_api, needs_bridge]

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "sdk-quickstart-secret"


def test_the_quickstart_example_runs_as_written(
    live_server, settings, api_key, operator_token, celery_worker_factory, client
):
    from mock_agentkit.testing import running_mock_agentkit

    settings.OPSCORE_WEBHOOK_SECRET = WEBHOOK_SECRET
    with running_mock_agentkit(
        opscore_url=live_server.url, api_key=api_key, webhook_secret=WEBHOOK_SECRET, agents=5, work_time=0.1
    ) as mock:
        mock.drain()
        settings.AGENTKIT_API_URL = mock.url
        celery_worker_factory({"AGENTKIT_API_URL": mock.url})
        client.create_workflows_from_file(ROOT / "workflows" / "samples" / "sample_workflow.json")
        env = {**os.environ, "OPSCORE_API_URL": live_server.url, "OPSCORE_API_KEY": operator_token}
        result = subprocess.run(
            [sys.executable, str(ROOT / "sdk" / "examples" / "quickstart.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "quickstart-agent is idle" in result.stdout
    assert "completed in" in result.stdout
    assert operator_token not in result.stdout + result.stderr
