"""Dispatch controls through the SDK client and the ``opscore`` CLI, against a live Ops-Core."""

from __future__ import annotations

import json

import pytest
from opscore_sdk import ConflictError, NotFoundError, ValidationError
from opscore_sdk.cli import main

from sdk.tests.conftest import needs_workflow_api
from sdk.tests.workflow_data import DEFINITION

pytestmark = [pytest.mark.django_db(transaction=True), needs_workflow_api]

WF = DEFINITION["id"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def stored(client):
    client.create_workflow(DEFINITION)


def test_the_client_pauses_resumes_and_limits_a_workflow(client, stored):
    control = client.pause_workflow(WF, reason="bad deploy")
    assert control.paused and control.pause_reason == "bad deploy" and control.paused_at is not None
    session = client.get_session(client.trigger_workflow(WF).session_id)
    assert session.status == "pending" and session.tasks[0].waiting_reason == "workflow paused"
    assert client.get_workflow_controls(WF).pending_sessions == 1
    client.pause_workflow(WF, reject_when_paused=True)
    with pytest.raises(ConflictError):
        client.trigger_workflow(WF)
    assert not client.resume_workflow(WF).paused
    assert client.set_workflow_limit(WF, 2).max_running_sessions == 2
    assert client.set_workflow_limit(WF, None).max_running_sessions is None
    with pytest.raises(ValidationError):
        client.set_workflow_limit(WF, 0)
    with pytest.raises(NotFoundError):
        client.pause_workflow("nope")


def test_the_client_switches_maintenance_mode_and_capability_limits(client, stored):
    status = client.pause_dispatch(reason="upgrade")
    assert status.paused and status.reason == "upgrade"
    client.trigger_workflow(WF)
    (waiting,) = client.list_waiting_tasks()
    assert waiting.workflow_id == WF and waiting.waiting_reason == "dispatch paused"
    assert not client.resume_dispatch().paused
    limit = client.set_capability_limit("summarise", 4)
    assert (limit.capability, limit.max_in_flight, limit.in_flight) == ("summarise", 4, 0)
    assert [c.capability for c in client.dispatch_status().capability_limits] == ["summarise"]
    assert [c.max_in_flight for c in client.list_capability_limits()] == [4]
    client.delete_capability_limit("summarise")
    with pytest.raises(NotFoundError):
        client.delete_capability_limit("summarise")


def test_the_cli_pauses_and_resumes_a_workflow(capsys, cli_env, client, stored):
    code, out, _ = run(capsys, "workflows", "pause", WF, "--reason", "bad deploy")
    assert code == 0 and f"Workflow {WF}: paused" in out
    code, out, _ = run(capsys, "--json", "workflows", "pause", WF, "--reject")
    assert code == 0 and json.loads(out)["rejectWhenPaused"] is True
    code, out, _ = run(capsys, "workflows", "resume", WF)
    assert code == 0 and "running" in out
    code, out, _ = run(capsys, "workflows", "limit", WF, "--max-running", "3")
    assert code == 0 and "max running sessions 3" in out
    code, out, _ = run(capsys, "workflows", "limit", WF, "--clear")
    assert code == 0 and "max running sessions none" in out
    code, _, err = run(capsys, "workflows", "limit", WF, "--max-running", "0")
    assert code == 2 and "at least 1" in err
    code, _, _ = run(capsys, "workflows", "pause", "nope")
    assert code == 4


def test_the_cli_runs_maintenance_mode_and_limits(capsys, cli_env, client, stored):
    code, out, _ = run(capsys, "dispatch", "pause", "--reason", "upgrade")
    assert code == 0 and "PAUSED" in out and "upgrade" in out
    client.trigger_workflow(WF)
    code, out, _ = run(capsys, "dispatch", "waiting")
    assert code == 0 and "dispatch paused" in out and WF in out
    (session_id,) = [w.session_id for w in client.list_waiting_tasks()]
    code, out, _ = run(capsys, "sessions", "show", session_id)
    assert code == 0 and "waiting: dispatch paused" in out
    code, out, _ = run(capsys, "dispatch", "resume")
    assert code == 0 and "running" in out
    code, out, _ = run(capsys, "dispatch", "set-limit", "summarise", "10")
    assert code == 0 and "at most 10 in flight" in out
    code, out, _ = run(capsys, "dispatch", "status")
    assert code == 0 and "capability summarise" in out and "0/10" in out
    code, out, _ = run(capsys, "--json", "dispatch", "remove-limit", "summarise")
    assert code == 0 and json.loads(out) == {"capability": "summarise", "removed": True}
    code, _, _ = run(capsys, "dispatch", "remove-limit", "summarise")
    assert code == 4
