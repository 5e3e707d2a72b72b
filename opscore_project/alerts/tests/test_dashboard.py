"""The dashboard's alerts page and the admin pages (staff)."""

from __future__ import annotations

import pytest

from opscore_project.alerts.evaluation import alerts_evaluate
from opscore_project.alerts.models import AlertRule

pytestmark = pytest.mark.django_db


def test_the_alerts_page_lists_alerts_with_their_deliveries(staff_client, make_rule, make_agent, receiver, deliver):
    receiver.statuses = [502]
    make_rule("agent_error", name="agents in error")
    make_agent("broken", state="error")
    alerts_evaluate()
    deliver()
    page = staff_client.get("/dashboard/alerts/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "agents in error" in html and "Agent broken is in error" in html
    assert "firing via Signed webhook" in html and "HTTP 502" in html
    assert "(1 firing)" in html
    assert "Agent broken" not in staff_client.get("/dashboard/alerts/?status=resolved").content.decode()


def test_the_alerts_page_is_for_staff_only(client):
    response = client.get("/dashboard/alerts/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_rule_added_in_the_admin_is_validated_like_the_api(staff_client, receiver):
    form = {
        "name": "queue",
        "condition": "task_queue_wait",
        "threshold": "",
        "workflow_id": "",
        "channel": "webhook",
        "target": receiver.url,
        "quiet_period_seconds": "300",
        "enabled": "on",
    }
    refused = staff_client.post("/admin/alerts/alertrule/add/", form)
    assert refused.status_code == 200 and "Required for task_queue_wait" in refused.content.decode()
    assert not AlertRule.objects.exists()
    accepted = staff_client.post("/admin/alerts/alertrule/add/", {**form, "threshold": "30"})
    assert accepted.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.threshold == 30
    changed = staff_client.post(f"/admin/alerts/alertrule/{rule.pk}/change/", {**form, "threshold": "45"})
    assert changed.status_code == 302 and AlertRule.objects.get().threshold == 45
    assert staff_client.get("/admin/alerts/alert/").status_code == 200
    assert staff_client.get("/admin/alerts/alertdelivery/").status_code == 200
