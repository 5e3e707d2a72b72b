"""The admin's pending human tasks: the list, the answer form and the approve/reject actions."""

from __future__ import annotations

import pytest

from workflows.models import TaskRun

pytestmark = pytest.mark.django_db

FLOW = {
    "id": "admin_answers",
    "tasks": [
        {"taskId": "ok", "kind": "approval", "prompt": "OK?"},
        {"taskId": "size", "kind": "input", "prompt": "Size?",
         "inputSchema": {"type": "object", "properties": {"n": {"type": "integer", "maximum": 5}}}},
    ],
}  # fmt: skip
URL = "/admin/workflows/pendinghumantask/"


@pytest.fixture
def session(define, start):
    return start(define(FLOW))


def test_the_list_shows_waiting_tasks_and_the_actions_answer_approvals(staff_client, session):
    page = staff_client.get(URL)
    assert page.status_code == 200 and b"OK?" in page.content and b"Size?" in page.content
    runs = TaskRun.objects.filter(session=session)
    staff_client.post(URL, {"action": "approve_tasks", "_selected_action": [str(r.pk) for r in runs]})
    ok = TaskRun.objects.get(session=session, task_id="ok")
    assert (ok.status, ok.answered_by, ok.answered_via) == ("completed", "operator", "admin")
    assert TaskRun.objects.get(session=session, task_id="size").status == "waiting_for_input"
    assert b"OK?" not in staff_client.get(URL).content


def test_the_answer_form_validates_the_value_then_answers(staff_client, session):
    run = TaskRun.objects.get(session=session, task_id="size")
    url = f"{URL}{run.pk}/change/"
    assert staff_client.get(url).status_code == 200
    bad = staff_client.post(url, {"value": '{"n": 9}'})
    assert bad.status_code == 200 and b"Must be at most 5" in bad.content
    assert staff_client.post(url, {"value": "{"}).status_code == 200
    staff_client.post(url, {"value": '{"n": 2}'})
    run.refresh_from_db()
    assert (run.status, run.result, run.answered_via) == ("completed", {"n": 2}, "admin")
