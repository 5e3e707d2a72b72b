"""The dispatch controls in the admin: every save goes through the services (logged, engine woken)."""

import pytest

from opscore_project.observability.models import OperationEvent
from workflows.models import CapabilityLimit, DispatchControl, WorkflowControl

pytestmark = pytest.mark.django_db


@pytest.fixture
def wf(define):
    return define({"id": "wf", "tasks": [{"taskId": "only", "agentCapability": "c"}]})


@pytest.mark.parametrize(
    "url",
    [
        "/admin/workflows/workflowcontrol/",
        "/admin/workflows/workflowcontrol/add/",
        "/admin/workflows/dispatchcontrol/",
        "/admin/workflows/dispatchcontrol/add/",
        "/admin/workflows/capabilitylimit/",
        "/admin/workflows/capabilitylimit/add/",
    ],
)
def test_the_control_pages_load(staff_client, url):
    assert staff_client.get(url).status_code == 200


def test_the_admin_pauses_a_workflow_and_sets_its_limit(staff_client, wf):
    form = {"workflow_id": "wf", "paused": "on", "reason": "", "pause_reason": "bad deploy", "max_running_sessions": 2}
    response = staff_client.post("/admin/workflows/workflowcontrol/add/", form, follow=True)
    assert response.status_code == 200
    control = WorkflowControl.objects.get()
    assert control.paused_at is not None and control.max_running_sessions == 2
    assert control.pause_reason == "bad deploy"
    assert OperationEvent.objects.filter(event_type="workflow.paused").exists()
    response = staff_client.post(
        f"/admin/workflows/workflowcontrol/{control.pk}/change/", {"max_running_sessions": ""}, follow=True
    )
    control.refresh_from_db()
    assert control.paused_at is None and control.max_running_sessions is None
    assert OperationEvent.objects.filter(event_type="workflow.resumed").exists()


def test_the_admin_refuses_an_unknown_workflow_and_a_zero_limit(staff_client, wf):
    response = staff_client.post("/admin/workflows/workflowcontrol/add/", {"workflow_id": "nope"})
    assert response.status_code == 200 and b"No workflow definition" in response.content
    response = staff_client.post(
        "/admin/workflows/workflowcontrol/add/", {"workflow_id": "wf", "max_running_sessions": 0}
    )
    assert response.status_code == 200 and not WorkflowControl.objects.exists()


def test_the_admin_actions_pause_and_resume(staff_client, wf):
    control = WorkflowControl.objects.create(workflow_id="wf")
    changelist = "/admin/workflows/workflowcontrol/"
    staff_client.post(changelist, {"action": "pause_workflows", "_selected_action": [control.pk]})
    control.refresh_from_db()
    assert control.paused_at is not None
    staff_client.post(changelist, {"action": "resume_workflows", "_selected_action": [control.pk]})
    control.refresh_from_db()
    assert control.paused_at is None


def test_the_admin_switches_maintenance_mode(staff_client):
    staff_client.post("/admin/workflows/dispatchcontrol/add/", {"paused": "on", "reason": "upgrade"}, follow=True)
    control = DispatchControl.objects.get()
    assert control.paused_at is not None and control.reason == "upgrade"
    staff_client.post(f"/admin/workflows/dispatchcontrol/{control.pk}/change/", {"reason": ""}, follow=True)
    control.refresh_from_db()
    assert control.paused_at is None
    kinds = set(OperationEvent.objects.values_list("event_type", flat=True))
    assert {"dispatch.paused", "dispatch.resumed"} <= kinds


def test_the_admin_sets_and_deletes_a_capability_limit(staff_client):
    staff_client.post("/admin/workflows/capabilitylimit/add/", {"capability": "c", "max_in_flight": 3})
    limit = CapabilityLimit.objects.get()
    assert limit.max_in_flight == 3
    assert OperationEvent.objects.filter(event_type="limit.set").exists()
    staff_client.post(f"/admin/workflows/capabilitylimit/{limit.pk}/delete/", {"post": "yes"})
    assert not CapabilityLimit.objects.exists()
    response = staff_client.post("/admin/workflows/capabilitylimit/add/", {"capability": "c", "max_in_flight": 0})
    assert response.status_code == 200 and not CapabilityLimit.objects.exists()
