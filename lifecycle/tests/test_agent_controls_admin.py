"""Operator controls on agents in the admin: list columns, actions and capabilities, all through the services."""

from __future__ import annotations

import pytest

from lifecycle.models import Agent, AgentSource
from opscore_project.observability.models import OperationEvent

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/lifecycle/agent/"


def make_agent(agent_id: str) -> Agent:
    return Agent.objects.create(agent_id=agent_id, source=AgentSource.STATE_REPORT, state="idle")


def act(staff_client, action: str, *agent_ids: str):
    pks = [Agent.objects.get(agent_id=agent_id).pk for agent_id in agent_ids]
    return staff_client.post(CHANGELIST, {"action": action, "_selected_action": pks}, follow=True)


def test_the_admin_drains_quarantines_releases_and_undrains_agents(staff_client):
    make_agent("a1")
    make_agent("a2")
    response = act(staff_client, "drain_agents", "a1", "a2")
    assert "2 agent(s) drained." in response.content.decode()
    assert Agent.objects.filter(drained_at__isnull=False).count() == 2
    act(staff_client, "quarantine_agents", "a1")
    assert Agent.objects.get(agent_id="a1").breaker_state == "open"
    response = act(staff_client, "release_agents", "a1", "a2")
    assert "1 agent(s) released." in response.content.decode()
    act(staff_client, "undrain_agents", "a1", "a2")
    assert not Agent.objects.filter(drained_at__isnull=False).exists()
    logged = OperationEvent.objects.filter(agent_id="a1").values_list("event_type", flat=True).order_by("id")
    assert list(logged) == ["agent.drained", "agent.quarantined", "agent.quarantine_released", "agent.undrained"]


def test_the_agent_list_shows_drain_and_quarantine(staff_client):
    make_agent("a1")
    act(staff_client, "quarantine_agents", "a1")
    page = staff_client.get(CHANGELIST).content.decode()
    assert "Breaker state" in page and "Quarantined until" in page and "Drained" in page
    assert staff_client.get(CHANGELIST + "?breaker_state__exact=open").status_code == 200
    assert staff_client.get(CHANGELIST + "?drained=yes").status_code == 200


INLINE = {"history-TOTAL_FORMS": 0, "history-INITIAL_FORMS": 0, "history-MIN_NUM_FORMS": 0, "history-MAX_NUM_FORMS": 0}


def test_capabilities_edited_in_the_admin_are_set_by_the_operator(staff_client):
    agent = make_agent("a1")
    url = f"{CHANGELIST}{agent.pk}/change/"
    form = {"name": "A", "version": "1", "capabilities": '["summarise"]', "contact_endpoint": "", "metadata": "{}"}
    response = staff_client.post(url, {**form, **INLINE})
    assert response.status_code == 302, response.content.decode()[:2000]
    agent.refresh_from_db()
    assert (agent.capabilities, agent.capabilities_known, agent.capabilities_source) == (
        ["summarise"],
        True,
        "operator",
    )
    assert OperationEvent.objects.filter(agent_id="a1", event_type="agent.capabilities_set").count() == 1
    response = staff_client.post(url, {**form, "capabilities": '[""]', **INLINE})
    assert response.status_code == 200 and "non-empty string" in response.content.decode()
