"""``opscore workflows``, ``run`` and ``sessions`` against a live Ops-Core (no worker: sessions are ended by
cancelling them; the full run is in ``test_end_to_end.py``)."""

from __future__ import annotations

import json

import pytest
import yaml
from opscore_sdk.cli import main

from sdk.tests.conftest import needs_workflow_api
from sdk.tests.workflow_data import DEFINITION, definition, make_agents

pytestmark = [pytest.mark.django_db(transaction=True), needs_workflow_api]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def loaded(capsys, cli_env, tmp_path):
    make_agents()
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(DEFINITION))
    code, out, err = run(capsys, "workflows", "load", str(path))
    assert code == 0, err
    assert "loaded sdk_test_workflow v1.0 (2 tasks)" in out
    return path


def test_workflows_load_list_and_show(capsys, loaded, tmp_path):
    yaml_file = tmp_path / "more.yaml"
    yaml_file.write_text(yaml.safe_dump(definition(id="sdk_yaml")))
    code, out, _ = run(capsys, "--json", "workflows", "load", str(yaml_file))
    assert code == 0
    assert json.loads(out) == [{"file": str(yaml_file), "id": "sdk_yaml", "version": "1.0", "tasks": 2}]

    code, out, _ = run(capsys, "workflows", "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "VERSION", "NAME", "TASKS", "CAPABILITIES"]
    assert "sdk_test_workflow" in out and "sdk_yaml" in out and "summarise, translate" in out

    code, out, _ = run(capsys, "workflows", "show", "sdk_test_workflow")
    assert code == 0
    assert "step_1" in out and "step_2" in out and "translate" in out

    code, out, _ = run(capsys, "--json", "workflows", "show", "sdk_test_workflow")
    assert json.loads(out)["tasks"][0]["taskId"] == "step_1"


def test_workflows_load_reports_each_failure_and_exits_with_the_first(capsys, loaded, tmp_path):
    conflicting = tmp_path / "conflict.json"
    conflicting.write_text(json.dumps(definition(description="changed")))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    code, _, err = run(capsys, "workflows", "load", str(conflicting), str(broken))
    assert code == 8
    assert "conflict.json" in err and "broken.json" in err
    code, _, _ = run(capsys, "workflows", "load", str(tmp_path / "missing.json"))
    assert code == 7


def test_workflows_show_unknown_exits_4(capsys, cli_env):
    code, _, err = run(capsys, "workflows", "show", "nope")
    assert code == 4
    assert err.startswith("opscore: error:")


def test_run_then_sessions_list_show_cancel(capsys, loaded):
    code, out, _ = run(capsys, "--json", "run", "sdk_test_workflow", "--param", "text=hi", "--param", "n=3")
    assert code == 0
    session_id = json.loads(out)["sessionId"]

    code, out, _ = run(capsys, "--json", "sessions", "show", session_id)
    assert json.loads(out)["initialPayload"] == {"text": "hi", "n": 3}

    code, out, _ = run(capsys, "sessions", "list")
    assert code == 0 and session_id in out

    code, out, _ = run(capsys, "sessions", "show", session_id)
    assert code == 0 and session_id in out and "sdk_test_workflow" in out

    code, out, _ = run(capsys, "sessions", "cancel", session_id)
    assert code == 0 and "cancelled" in out

    code, out, _ = run(capsys, "--json", "sessions", "list", "--status", "cancelled")
    assert [s["sessionId"] for s in json.loads(out)] == [session_id]

    code, _, _ = run(capsys, "sessions", "cancel", session_id)
    assert code == 8  # already ended

    code, out, _ = run(capsys, "sessions", "watch", session_id, "--interval", "0")
    assert code == 1  # ended, but not completed
    assert "cancelled" in out


def test_run_for_an_agent(capsys, loaded):
    code, out, _ = run(capsys, "--json", "run", "sdk_test_workflow", "--agent", "sdk-summariser")
    assert code == 0
    session_id = json.loads(out)["sessionId"]
    code, out, _ = run(capsys, "--json", "sessions", "show", session_id)
    assert json.loads(out)["agentId"] == "sdk-summariser"


def test_run_with_a_capability_the_workflow_uses(capsys, loaded):
    code, out, _ = run(capsys, "run", "sdk_test_workflow", "--capability", "translate")
    assert code == 0
    assert "Started session" in out


def test_run_with_a_capability_the_workflow_does_not_use_exits_7(capsys, loaded):
    code, _, err = run(capsys, "run", "sdk_test_workflow", "--capability", "classify")
    assert code == 7
    assert "summarise, translate" in err


def test_run_unknown_workflow_exits_4(capsys, cli_env):
    code, _, _ = run(capsys, "run", "nope")
    assert code == 4


def test_sessions_retry_of_a_running_session_exits_8(capsys, loaded):
    code, out, _ = run(capsys, "--json", "run", "sdk_test_workflow")
    session_id = json.loads(out)["sessionId"]
    code, _, err = run(capsys, "sessions", "retry", session_id)
    assert code == 8
    run(capsys, "sessions", "cancel", session_id)
