"""Every example in examples/workflows/ is valid and does what docs/workflows.md says, on a live stack."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
import yaml

from opscore_project.testing import free_port, wait_until
from opscore_project.testing import test_process_env as process_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workflows"
DEFINITION_FILES = sorted([*EXAMPLES.glob("*.json"), *EXAMPLES.glob("*.yaml")])


@pytest.fixture
def stack(live_stack):
    from mock_agentkit.testing import AgentSpec

    for spec in (
        AgentSpec("summariser", ["summarise"], work_time=0.05),
        AgentSpec("translator", ["translate"], work_time=0.05),
        AgentSpec("classifier", ["classify"], work_time=0.05),
    ):
        live_stack.mock.add_agent(spec)
    live_stack.mock.drain()
    for path in DEFINITION_FILES:
        answer = api(live_stack, "POST", "/v1/opscore/workflows", json=yaml.safe_load(path.read_text()))
        assert answer.status_code == 201, f"{path.name}: {answer.text}"
    return live_stack


def api(stack, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {stack.operator_token}"}  # operator calls; the agent uses the shared key
    return requests.request(method, f"{stack.url}{path}", headers=headers, timeout=10, **kwargs)


def run_to_end(stack, workflow_id: str, payload: dict, **extra) -> dict:
    started = api(stack, "POST", f"/v1/opscore/workflows/{workflow_id}/run", json={"initialPayload": payload, **extra})
    assert started.status_code == 202, started.text
    session_id = started.json()["sessionId"]
    return wait_until(
        lambda: (
            (s := api(stack, "GET", f"/v1/opscore/sessions/{session_id}").json())["status"]
            in {"completed", "failed", "cancelled"}
            and s
        ),
        timeout=60,
        message=f"{workflow_id} session to end",
    )


def test_every_example_definition_is_valid(operator_api_client):
    assert len(DEFINITION_FILES) >= 5
    for path in DEFINITION_FILES:
        answer = operator_api_client.post("/v1/opscore/workflows", yaml.safe_load(path.read_text()), format="json")
        assert answer.status_code == 201, f"{path.name}: {answer.content!r}"


def test_the_linear_example_passes_the_summary_to_the_translation(stack):
    session = run_to_end(stack, "example_linear", {"text": "Ops-Core runs workflows."})
    assert session["status"] == "completed", session
    assert [t["taskId"] for t in session["tasks"]] == ["summarise", "translate"]
    assert session["tasks"][1]["result"]["translation"] == "[fr] Ops-Core runs workflows."


def test_the_dag_example_fans_out_and_joins(stack):
    session = run_to_end(stack, "example_dag", {"text": "A short text"})
    assert session["status"] == "completed", session
    runs = {t["taskId"]: t for t in session["tasks"]}
    assert set(runs) == {"summarise", "translate", "classify", "report"}
    assert runs["report"]["readyAt"] >= max(runs["translate"]["endedAt"], runs["classify"]["endedAt"])
    assert runs["report"]["result"]["summary"] == "[de] A short text (short)"


def test_the_retries_example_retries_then_falls_back(stack):
    stack.mock.set_behaviour(stack.mock.agent("translator").agent_id, fail_next=3)
    session = run_to_end(stack, "example_retries", {"text": "Bonjour"})
    assert session["status"] == "completed", session
    runs = [(t["taskId"], t["attempt"], t["status"]) for t in session["tasks"]]
    assert runs[:3] == [("translate", 1, "failed"), ("translate", 2, "failed"), ("translate", 3, "failed")]
    assert ("summarise_instead", 1, "completed") in runs and ("classify", 1, "completed") in runs


def test_the_schedule_example_creates_a_schedule_that_starts_the_workflow(stack):
    from workflows.models import WorkflowSchedule
    from workflows.services import workflow_schedule_run

    env = process_env()
    result = subprocess.run(
        [sys.executable, "manage.py", "shell"],
        stdin=(EXAMPLES / "schedule.py").open(),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "schedule 'nightly summary': 0 2 * * * UTC" in result.stdout
    schedule = WorkflowSchedule.objects.get(name="nightly summary")
    assert schedule.periodic_task.crontab.hour == "2" and schedule.periodic_task.enabled
    started = workflow_schedule_run(schedule_id=schedule.pk)  # what beat does at 02:00
    assert started.session is not None and started.session.definition.workflow_id == "example_nightly"


def test_the_callback_receiver_accepts_signed_callbacks_and_rejects_others(stack):
    port = free_port()
    env = dict(os.environ, OPSCORE_CALLBACK_SECRET=stack.webhook_secret)
    receiver = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "callback_receiver.py"), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(receiver.stdout), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: _answers(url), message="the receiver to listen")
        forged = requests.post(
            url, json={"session": {}}, headers={"X-OpsCore-Timestamp": "1", "X-OpsCore-Signature": "x"}
        )
        assert forged.status_code == 401

        session = run_to_end(stack, "example_linear", {"text": "Call me back."}, callbackUrl=url)
        assert session["status"] == "completed"
        wait_until(lambda: f"session {session['sessionId']} completed\n" in lines, message=f"the callback: {lines}")
        assert "rejected: bad or missing signature\n" in lines
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
    except requests.ConnectionError:
        return False
    return True


def test_the_review_example_waits_for_a_person_then_publishes_what_was_approved(stack):
    started = api(stack, "POST", "/v1/opscore/workflows/review_and_publish/run", json={"initialPayload": {"text": "T"}})
    session_id = started.json()["sessionId"]
    wait_until(
        lambda: api(stack, "GET", f"/v1/opscore/sessions/{session_id}").json()["status"] == "waiting_for_input",
        timeout=30,
        message="the review to wait",
    )
    inbox = api(stack, "GET", f"/v1/opscore/inbox?session={session_id}").json()["results"]
    assert [(task["taskId"], task["prompt"]) for task in inbox] == [("review", "Publish this summary? T")]
    answer = api(
        stack,
        "POST",
        f"/v1/opscore/sessions/{session_id}/tasks/review/input",
        json={"option": "approve", "comment": "ok"},
    )
    assert answer.status_code == 200, answer.text
    session = wait_until(
        lambda: (s := api(stack, "GET", f"/v1/opscore/sessions/{session_id}").json())["status"] == "completed" and s,
        timeout=30,
        message="the session to complete",
    )
    assert [t["taskId"] for t in session["tasks"]] == ["summarise", "review", "publish"]
    assert session["tasks"][-1]["result"]["echo"] == {"text": "T", "approvedBy": "token:make-run", "note": "ok"}


def test_make_run_loads_the_review_example():
    launcher = (ROOT / "opscore_project" / "launcher.py").read_text()
    assert '"load_workflows", "examples/workflows/review_and_publish.yaml"' in launcher
