"""Human tasks from the SDK and the CLI against a live Ops-Core: the inbox, approve, reject, input, run --wait.

Workflows here have only approval and input tasks, so no agent or worker is needed: an answer moves the session
on in the answering request itself."""

from __future__ import annotations

import json

import pytest
from opscore_sdk import ConflictError, PermissionDeniedError, ValidationError
from opscore_sdk.cli import main

from sdk.tests.conftest import needs_workflow_api

pytestmark = [pytest.mark.django_db(transaction=True), needs_workflow_api]

SIGN_OFF = {
    "id": "sign_off",
    "tasks": [
        {"taskId": "details", "kind": "input", "prompt": "Release details?", "nextTaskId": "review",
         "inputSchema": {"type": "object", "required": ["version"],
                         "properties": {"version": {"type": "string", "maxLength": 10}, "notes": {"type": "string"}}}},
        {"taskId": "review", "kind": "approval", "prompt": "Release {{ tasks.details.result.version }}?"},
    ],
}  # fmt: skip


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_sdk_lists_the_inbox_and_answers(client):
    client.create_workflow(SIGN_OFF)
    session_id = client.trigger_workflow("sign_off").session_id
    inbox = client.list_inbox()
    assert [(t.session_id, t.task_id, t.kind) for t in inbox] == [(session_id, "details", "input")]
    assert inbox[0].input_schema["required"] == ["version"]
    with pytest.raises(ValidationError) as caught:
        client.submit_input(session_id, "details", {"version": "far too long a version"})
    assert "value.version" in caught.value.errors
    answered = client.submit_input(session_id, "details", {"version": "2.1"})
    assert answered.result == {"version": "2.1"} and answered.answered_via == "sdk"
    assert client.get_session(session_id).status == "waiting_for_input"
    assert client.list_inbox(kind="approval")[0].prompt == "Release 2.1?"
    approved = client.approve(session_id, "review", comment="go")
    assert approved.result == {"approved": True, "option": "approve", "comment": "go", "by": "token:operator-tests"}
    with pytest.raises(ConflictError, match="already answered by token:operator-tests"):
        client.reject(session_id, "review")
    session = client.get_session(session_id)
    assert session.status == "completed"
    assert [(t.task_id, t.status, t.answered_by) for t in session.tasks] == [
        ("details", "completed", "token:operator-tests"),
        ("review", "completed", "token:operator-tests"),
    ]


def test_the_agent_key_may_not_answer(client, base_url, api_key):
    from opscore_sdk import OpsCoreClient

    client.create_workflow(SIGN_OFF)
    session_id = client.trigger_workflow("sign_off").session_id
    with OpsCoreClient(base_url, api_key, retries=0) as agent, pytest.raises(PermissionDeniedError):
        agent.submit_input(session_id, "details", {"version": "1"})


def test_the_cli_inbox_input_approve_and_reject(capsys, cli_env, client):
    client.create_workflow(SIGN_OFF)
    first = client.trigger_workflow("sign_off").session_id
    second = client.trigger_workflow("sign_off").session_id

    code, out, _ = run(capsys, "inbox")
    assert code == 0 and out.splitlines()[0].split() == ["SESSION", "TASK", "KIND", "PROMPT", "ANSWER", "WAITING",
                                                          "TIMEOUT"]  # fmt: skip
    assert first in out and second in out and "Release details?" in out

    code, _, err = run(capsys, "input", first, "details", "--json", '{"version": 5}')
    assert code == 7 and "value.version" in err
    code, out, _ = run(capsys, "input", first, "details", "--json", '{"version": "3.0"}')
    assert code == 0 and "answered by token:operator-tests" in out
    code, out, _ = run(capsys, "--json", "inbox", "--kind", "approval")
    assert [(t["sessionId"], t["prompt"]) for t in json.loads(out)] == [(first, "Release 3.0?")]
    code, out, _ = run(capsys, "approve", first, "review", "--comment", "ship it")
    assert code == 0 and '"comment": "ship it"' in out
    code, _, err = run(capsys, "reject", first, "review")
    assert code == 8 and "already answered" in err
    assert client.get_session(first).tasks[0].answered_via == "cli"

    run(capsys, "input", second, "details", "--json", '{"version": "4"}')
    code, out, _ = run(capsys, "reject", second, "review", "--comment", "not now")
    assert code == 0
    session = client.get_session(second)
    assert session.status == "failed" and "rejected by token:operator-tests: not now" in session.error


def test_run_wait_shows_what_it_is_waiting_for(capsys, cli_env, client):
    client.create_workflow(SIGN_OFF)
    code, out, _ = run(capsys, "run", "sign_off", "--wait", "--plain", "--timeout-wait", "1", "--interval", "0.2")
    assert code == 10
    assert "task details  waiting for input: Release details?" in out
    assert "waiting_for_input" in out  # the session's status line
