"""The alerts list: newest first, filtered by status or rule, each alert with its deliveries."""

from __future__ import annotations

import pytest

from lifecycle.models import Agent
from opscore_project.alerts.evaluation import alerts_evaluate

pytestmark = pytest.mark.django_db


def test_alerts_are_listed_with_their_deliveries(operator_api_client, make_rule, make_agent, receiver, deliver):
    receiver.statuses = [500, 200]
    rule = make_rule("agent_error")
    other = make_rule("agent_stale", name="stale", threshold=3600)
    agent = make_agent("broken", state="error")
    alerts_evaluate()
    deliver()
    Agent.objects.filter(pk=agent.pk).update(state="idle")
    alerts_evaluate()
    deliver()
    body = operator_api_client.get("/v1/opscore/alerts").json()
    assert body["count"] == 1
    alert = body["results"][0]
    assert (alert["ruleId"], alert["ruleName"], alert["key"], alert["status"]) == (
        rule.pk,
        rule.name,
        "broken",
        "resolved",
    )
    assert [(d["kind"], d["status"], d["attempts"], d["statusCode"], d["reason"]) for d in alert["deliveries"]] == [
        ("firing", "pending", 1, 500, "HTTP 500"),
        ("resolved", "sent", 1, 200, None),
    ]
    assert alert["deliveries"][0]["nextAttemptAt"] is not None
    assert operator_api_client.get("/v1/opscore/alerts?status=firing").json()["count"] == 0
    assert operator_api_client.get(f"/v1/opscore/alerts?rule={other.pk}").json()["count"] == 0
    assert operator_api_client.get(f"/v1/opscore/alerts?rule={rule.pk}&status=resolved").json()["count"] == 1


@pytest.mark.parametrize("query", ["status=burning", "rule=x", "rule=99999999999999999999999"])
def test_a_bad_filter_is_a_400_naming_it(operator_api_client, query):
    response = operator_api_client.get(f"/v1/opscore/alerts?{query}")
    assert response.status_code == 400 and query.split("=")[0] in response.json()["errors"]
