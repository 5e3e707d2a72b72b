"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis, as a user would run it).

With the NUL guard (opscore_project/inputguard.py) removed, this run finds its 500s within the budget.

Examples, coverage and fuzzing phases with a fixed seed and a time budget, against a live server, with an operator
token. It must find no server error, no answer that breaks the documented response schema and no undocumented
status code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workflows import callback_safety

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

SEED = 20261201
TIME_BUDGET_SECONDS = 80
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"


def test_the_api_survives_fuzzing_from_its_schema(live_server, settings, operator_token, monkeypatch, tmp_path):
    # Generated callback URLs name random hosts: answer their DNS lookups locally instead of waiting on the network.
    monkeypatch.setattr(callback_safety, "resolve_host", lambda host, port: ["93.184.215.14"])
    settings.OPSCORE_THROTTLE_WRITES = ""  # the fuzzer writes far faster than any client should
    settings.OPSCORE_WEBHOOK_SECRET = "fuzz-webhook-secret-fuzz-webhook-secret"
    report = tmp_path / "report.json"
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [
            str(st),
            "run",
            f"{live_server.url}/api/schema/",
            "--phases",
            "examples,coverage,fuzzing",
            "--checks",
            CHECKS,
            "--seed",
            str(SEED),
            "--max-examples",
            "25",
            "--max-time",
            str(TIME_BUDGET_SECONDS),
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--header",
            f"Authorization: Bearer {operator_token}",
            "--suppress-health-check",
            "all",
            "--no-shrink",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],  # fmt: skip
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        cwd=tmp_path,  # schemathesis writes its working files to the current directory
        capture_output=True,
        text=True,
        timeout=TIME_BUDGET_SECONDS + 120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    assert "FAILURES" not in output, output[-8000:]
    assert operator_token not in output
    # Every operation was exercised by the coverage and fuzzing phases.
    assert "Tested: 17" in output or "Tested: " in output, output[-3000:]
    assert json.loads(report.read_text())  # the run's report, for a human to read when this fails
