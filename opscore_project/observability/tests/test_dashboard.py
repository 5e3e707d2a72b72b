import pytest
from django.urls import reverse

from lifecycle.models import Agent
from opscore_project.observability import events
from opscore_project.observability.oplog import log_operation
from opscore_project.observability.tests.workflow_run import run_workflow

pytestmark = pytest.mark.django_db


def test_the_operation_log_renders_for_staff(staff_client):
    log_operation(events.AGENT_REGISTERED, agent_id="agent-x", message="Registered via webhook")
    response = staff_client.get("/dashboard/events/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Registered via webhook" in html
    assert 'id="dashboard-config"' in html and "dashboard.js" in html
    assert reverse("dashboard-agent", args=["agent-x"]) in html


@pytest.mark.parametrize("url", ["/dashboard/events/", "/dashboard/sessions/sess-1/"])
def test_anonymous_users_are_sent_to_the_admin_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_non_staff_users_are_refused(client, django_user_model):
    user = django_user_model.objects.create_user(username="viewer", password="pw-123456789")
    client.force_login(user)
    assert client.get("/dashboard/").status_code == 302
    assert client.get("/dashboard/events/").status_code == 302


def test_dashboard_filters_the_rows(staff_client):
    log_operation(events.TASK_FAILED, level="error", message="first-failure", agent_id="a1")
    log_operation(events.TASK_COMPLETED, message="a-success", agent_id="a2")
    html = staff_client.get("/dashboard/events/?level=error").content.decode()
    assert "first-failure" in html and "a-success" not in html
    html = staff_client.get("/dashboard/events/?agent=a2").content.decode()
    assert "first-failure" not in html and "a-success" in html
    html = staff_client.get("/dashboard/events/?q=success").content.decode()
    assert "a-success" in html and "first-failure" not in html
    html = staff_client.get("/dashboard/events/?since=2000-01-01T00:00").content.decode()  # no offset: read as UTC
    assert "a-success" in html
    html = staff_client.get("/dashboard/events/?since=garbage").content.decode()
    assert "Invalid filter" in html


def test_the_dashboard_shows_aggregates(staff_client, monkeypatch):
    from opscore_project.observability import selectors

    monkeypatch.setattr(selectors, "_task_run_model", lambda: None)
    run_workflow("sess-agg")
    html = staff_client.get("/dashboard/events/").content.decode()
    assert "wf-report" in html and "Per agent" in html and "33 %" in html


def test_the_session_page_renders_the_timeline(staff_client):
    run_workflow("sess-page")
    response = staff_client.get("/dashboard/sessions/sess-page/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="lane"') == 2
    assert 'class="bar-run status-failed"' in html
    assert "Quota exceeded on translation API" in html
    assert "failed" in html


def test_an_unknown_session_is_a_404(staff_client):
    assert staff_client.get("/dashboard/sessions/nope/").status_code == 404


def test_agent_links_lead_to_the_agent_page(staff_client):
    Agent.objects.create(agent_id="agent-link", source="webhook")
    log_operation(events.AGENT_REGISTERED, agent_id="agent-link")
    html = staff_client.get("/dashboard/events/").content.decode()
    assert 'href="/dashboard/agents/agent-link/"' in html
    assert staff_client.get("/dashboard/agents/agent-link/").status_code == 200


def test_the_admin_index_links_the_dashboard_and_lists_events(staff_client):
    log_operation(events.SYNC_RUN, {"outcome": "ok"}, message="synced")
    assert 'href="/dashboard/"' in staff_client.get("/admin/").content.decode()
    response = staff_client.get("/admin/observability/operationevent/?level__exact=info")
    assert response.status_code == 200 and "synced" in response.content.decode()
    assert staff_client.get("/admin/observability/operationevent/add/").status_code == 403


def test_live_updates_deliver_a_new_event(staff_client):
    """What the dashboard's poller does: after=<latest id at page load> returns the new event."""
    log_operation(events.AGENT_REGISTERED, agent_id="old")
    response = staff_client.get("/dashboard/events/")
    latest = response.context["dashboard_config"]["latestId"]
    log_operation(events.TASK_DISPATCHED, agent_id="a-new", message="brand new")
    page = staff_client.get(f"/v1/opscore/events?after={latest}").json()
    assert [row["message"] for row in page["results"]] == ["brand new"]
