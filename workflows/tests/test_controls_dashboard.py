"""The dashboard shows dispatch controls and why each waiting task waits."""

import pytest

from workflows.engine import controls

pytestmark = pytest.mark.django_db


def single(cap: str, wf_id: str):
    return {"id": wf_id, "tasks": [{"taskId": "only", "agentCapability": cap}]}


def test_the_dispatch_page_shows_limits_and_waiting_reasons(staff_client, define, start, make_agent, sent):
    make_agent("a1", ["c"])
    make_agent("a2", ["c"])
    controls.capability_limit_set(capability="c", max_in_flight=1)
    definition = define(single("c", "wf"))
    start(definition)
    waiting = start(definition)
    body = staff_client.get("/dashboard/dispatch/").content.decode()
    assert "limit c: 1/1" in body and str(waiting.pk)[:8] in body
    assert 'class="limit-full"' in body and "Running." in body
    controls.dispatch_pause(reason="upgrade")
    body = staff_client.get("/dashboard/dispatch/").content.decode()
    assert "Paused (maintenance mode)" in body and "upgrade" in body and "dispatch paused" in body


def test_the_session_page_says_why_a_task_waits(staff_client, define, start):
    define(single("c", "wf"))
    controls.workflow_pause(workflow_id="wf")
    session = start(define(single("c", "wf")))
    body = staff_client.get(f"/dashboard/sessions/{session.pk}/").content.decode()
    assert "waiting: workflow paused" in body


def test_the_dispatch_page_is_for_staff_only(client):
    response = client.get("/dashboard/dispatch/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
