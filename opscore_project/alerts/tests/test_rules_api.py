"""The alert rules API: create, read, change, delete, with 400s naming the field and 409 for a used name."""

from __future__ import annotations

import pytest

from opscore_project.alerts.models import AlertRule

pytestmark = pytest.mark.django_db

URL = "/v1/opscore/alerts/rules"


def _rule(receiver, **fields):
    return {"name": "errors", "condition": "agent_error", "channel": "webhook", "target": receiver.url, **fields}


def test_an_operator_creates_lists_changes_and_deletes_a_rule(operator_api_client, receiver):
    created = operator_api_client.post(URL, _rule(receiver, quietPeriodSeconds=60), format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "errors" and body["quietPeriodSeconds"] == 60 and body["enabled"] is True
    assert body["threshold"] is None and body["workflowId"] is None
    listed = operator_api_client.get(URL).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == body["id"]
    changed = operator_api_client.patch(f"{URL}/{body['id']}", {"enabled": False}, format="json")
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert operator_api_client.get(f"{URL}/{body['id']}").json()["enabled"] is False
    assert operator_api_client.delete(f"{URL}/{body['id']}").status_code == 204
    assert operator_api_client.get(f"{URL}/{body['id']}").status_code == 404
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"condition": "moon_phase"}, "condition"),
        ({"channel": "pigeon"}, "channel"),
        ({"condition": "task_queue_wait"}, "threshold"),
        ({"condition": "agent_error", "threshold": 5}, "threshold"),
        ({"condition": "sync_failures", "threshold": 2.5}, "threshold"),
        ({"condition": "agent_error", "workflowId": "wf"}, "workflowId"),
        ({"target": "http://169.254.169.254/latest"}, "target"),
        ({"channel": "email", "target": "ops@example.com, not-an-address"}, "target"),
        ({"quietPeriodSeconds": -1}, "quietPeriodSeconds"),
        ({"name": "   "}, "name"),
    ],
)
def test_an_invalid_rule_is_refused_naming_the_field(operator_api_client, receiver, fields, field):
    response = operator_api_client.post(URL, _rule(receiver, **fields), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not AlertRule.objects.exists()


def test_a_rule_name_is_unique(operator_api_client, receiver):
    assert operator_api_client.post(URL, _rule(receiver), format="json").status_code == 201
    response = operator_api_client.post(URL, _rule(receiver), format="json")
    assert response.status_code == 409 and "name" in response.json()["errors"]


def test_a_change_is_validated_with_the_rest_of_the_rule(operator_api_client, receiver):
    rule_id = operator_api_client.post(URL, _rule(receiver), format="json").json()["id"]
    response = operator_api_client.patch(f"{URL}/{rule_id}", {"condition": "task_queue_wait"}, format="json")
    assert response.status_code == 400 and "threshold" in response.json()["errors"]
    assert AlertRule.objects.get().condition == "agent_error"
    ok = operator_api_client.patch(
        f"{URL}/{rule_id}", {"condition": "task_queue_wait", "threshold": 30, "workflowId": "wf"}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["workflowId"] == "wf"


def test_an_unknown_rule_is_404(operator_api_client):
    for rule_id in ("999", "abc", "99999999999999999999999"):
        assert operator_api_client.get(f"{URL}/{rule_id}").status_code == 404
        assert operator_api_client.patch(f"{URL}/{rule_id}", {}, format="json").status_code == 404
        assert operator_api_client.delete(f"{URL}/{rule_id}").status_code == 404


def test_an_agent_key_cannot_manage_rules(api_client, receiver):
    response = api_client.post(URL, _rule(receiver), format="json")
    assert response.status_code == 403 and "'operator' scope" in response.json()["message"]
