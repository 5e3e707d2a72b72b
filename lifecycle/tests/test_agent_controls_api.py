"""The operator controls on agents over HTTP: drain, quarantine, capabilities; and capabilities that agents announce
in their state reports or that AgentKit's registration replaces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from lifecycle import services
from lifecycle.models import Agent, AgentSource
from opscore_project.observability.models import OperationEvent

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def make_agent(agent_id: str = "a1", **fields) -> Agent:
    return Agent.objects.create(agent_id=agent_id, source=AgentSource.STATE_REPORT, state="idle", **fields)


def events(agent_id: str, event_type: str) -> list[OperationEvent]:
    return list(OperationEvent.objects.filter(agent_id=agent_id, event_type=event_type).order_by("id"))


def test_drain_and_undrain_show_on_the_agent_and_are_logged_once(operator_api_client):
    make_agent()
    response = operator_api_client.post("/v1/opscore/agents/a1/drain")
    assert response.status_code == 200
    assert response.json()["drained"] is True and response.json()["drainedAt"]
    assert operator_api_client.post("/v1/opscore/agents/a1/drain").status_code == 200  # idempotent
    assert operator_api_client.get("/v1/opscore/agents").json()["results"][0]["drained"] is True
    make_agent("a2")
    operator_api_client.post("/v1/opscore/agents/a2/quarantine")
    listed = {
        query: [a["agentId"] for a in operator_api_client.get(f"/v1/opscore/agents?{query}").json()["results"]]
        for query in ("drained=true", "drained=false", "quarantined=true", "quarantined=false")
    }
    assert listed == {
        "drained=true": ["a1"],
        "drained=false": ["a2"],
        "quarantined=true": ["a2"],
        "quarantined=false": ["a1"],
    }
    assert operator_api_client.get("/v1/opscore/agents?drained=maybe").status_code == 400
    assert len(events("a1", "agent.drained")) == 1
    body = operator_api_client.post("/v1/opscore/agents/a1/undrain").json()
    assert (body["drained"], body["drainedAt"]) == (False, None)
    assert len(events("a1", "agent.undrained")) == 1


@pytest.mark.parametrize("action", ["drain", "undrain", "quarantine", "release"])
def test_controls_answer_404_for_an_unknown_agent(operator_api_client, action):
    response = operator_api_client.post(f"/v1/opscore/agents/nobody/{action}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("action", ["drain", "undrain", "quarantine", "release"])
def test_controls_need_the_operator_scope(api_client, action):
    make_agent()
    response = api_client.post(f"/v1/opscore/agents/a1/{action}")
    assert response.status_code == 403
    assert "operator" in response.json()["message"]


def test_an_operator_quarantines_for_a_while_and_releases(operator_api_client):
    make_agent()
    body = operator_api_client.post(
        "/v1/opscore/agents/a1/quarantine", {"seconds": 600, "reason": "bad outputs"}, format="json"
    ).json()
    assert body["quarantined"] is True and body["breakerState"] == "open"
    assert body["quarantineReason"] == "bad outputs"
    until = datetime.fromisoformat(body["quarantinedUntil"])
    assert timedelta(seconds=590) < until - timezone.now() <= timedelta(seconds=600)
    (event,) = events("a1", "agent.quarantined")
    assert event.context["manual"] is True and event.context["cooldownSeconds"] == 600
    body = operator_api_client.post("/v1/opscore/agents/a1/release").json()
    assert (body["quarantined"], body["breakerState"], body["quarantinedUntil"]) == (False, "closed", None)
    assert len(events("a1", "agent.quarantine_released")) == 1
    operator_api_client.post("/v1/opscore/agents/a1/release")
    assert len(events("a1", "agent.quarantine_released")) == 1  # nothing to release: no second event


def test_a_quarantine_without_seconds_lasts_until_released(operator_api_client):
    make_agent()
    body = operator_api_client.post("/v1/opscore/agents/a1/quarantine").json()
    assert body["breakerState"] == "open" and body["quarantinedUntil"] is None


@pytest.mark.parametrize(
    "body, field_name",
    [({"seconds": 0}, "seconds"), ({"seconds": "soon"}, "seconds"), ({"reason": "x" * 501}, "reason")],
)
def test_a_bad_quarantine_body_is_refused_naming_the_field(operator_api_client, body, field_name):
    make_agent()
    response = operator_api_client.post("/v1/opscore/agents/a1/quarantine", body, format="json")
    assert response.status_code == 400
    assert field_name in response.json()["errors"]
    assert Agent.objects.get(agent_id="a1").breaker_state == "closed"


def test_an_operator_sets_capabilities_and_they_count_as_known(operator_api_client):
    make_agent()
    response = operator_api_client.put(
        "/v1/opscore/agents/a1/capabilities", {"capabilities": ["summarise", "translate", "summarise"]}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["capabilities"] == ["summarise", "translate"]
    assert (body["capabilitiesKnown"], body["capabilitiesSource"]) == (True, "operator")
    listed = operator_api_client.get("/v1/opscore/agents?capability=translate").json()["results"]
    assert [agent["agentId"] for agent in listed] == ["a1"]
    (event,) = events("a1", "agent.capabilities_set")
    assert event.context["source"] == "operator" and event.context["previous"]["capabilities"] is None


@pytest.mark.parametrize(
    "body", [{}, {"capabilities": "summarise"}, {"capabilities": [""]}, {"capabilities": [1]}, {"capabilities": None}]
)
def test_bad_capabilities_are_refused_and_nothing_changes(operator_api_client, body):
    make_agent()
    response = operator_api_client.put("/v1/opscore/agents/a1/capabilities", body, format="json")
    assert response.status_code == 400
    assert [name.split(".")[0] for name in response.json()["errors"]] == ["capabilities"]
    agent = Agent.objects.get(agent_id="a1")
    assert (agent.capabilities_known, agent.capabilities_source) == (False, "")


def test_a_webhook_with_real_capabilities_replaces_the_operators_and_says_so(operator_api_client):
    make_agent()
    operator_api_client.put("/v1/opscore/agents/a1/capabilities", {"capabilities": ["guess"]}, format="json")
    services.agent_register(
        agent_id="a1", name="A", version="1", capabilities=["real"], contact_endpoint="http://a/", metadata={},
        source=AgentSource.WEBHOOK,
    )  # fmt: skip
    agent = Agent.objects.get(agent_id="a1")
    assert (agent.capabilities, agent.capabilities_source) == (["real"], "webhook")
    replaced = events("a1", "agent.capabilities_set")[-1]
    assert replaced.context["source"] == "webhook"
    assert replaced.context["previous"] == {"capabilities": ["guess"], "source": "operator"}


def test_a_webhook_without_capabilities_keeps_the_operators(operator_api_client):
    make_agent()
    operator_api_client.put("/v1/opscore/agents/a1/capabilities", {"capabilities": ["guess"]}, format="json")
    services.agent_register(
        agent_id="a1", name="A", version="1", capabilities=[], contact_endpoint="http://a/", metadata={},
        source=AgentSource.WEBHOOK,
    )  # fmt: skip
    agent = Agent.objects.get(agent_id="a1")
    assert (agent.name, agent.capabilities, agent.capabilities_source) == ("A", ["guess"], "operator")


@dataclass(frozen=True)
class Listed:
    agent_id: str
    name: str = "agent"
    version: str = "1.0"
    capabilities: list[str] = field(default_factory=lambda: ["summarise"])
    contact_endpoint: str = "http://agent/"
    metadata: dict[str, Any] = field(default_factory=dict)


def test_a_poll_with_real_capabilities_replaces_reported_ones_and_an_empty_one_does_not(api_client):
    def report(agent_id: str, seconds: int, details: dict) -> None:
        at = (T0 + timedelta(seconds=seconds)).isoformat()
        body = {"agentId": agent_id, "timestamp": at, "state": "idle", "details": details}
        assert api_client.post(f"/v1/opscore/agent/{agent_id}/state", body, format="json").status_code == 202

    report("kept", 0, {"capabilities": ["own"]})
    report("replaced", 0, {"capabilities": ["own"]})
    services.agents_sync_listing(
        listed=[Listed("kept", capabilities=[]), Listed("replaced", capabilities=["listed"])], now=timezone.now()
    )
    kept, replaced = Agent.objects.get(agent_id="kept"), Agent.objects.get(agent_id="replaced")
    assert (kept.capabilities, kept.capabilities_source, kept.registered_at is not None) == (["own"], "report", True)
    assert (replaced.capabilities, replaced.capabilities_source) == (["listed"], "poll")
    assert events("replaced", "agent.capabilities_set")[-1].context["previous"]["source"] == "report"
    assert events("kept", "agent.capabilities_set")[-1].context["source"] == "report"


def test_a_state_report_announces_capabilities(api_client, operator_api_client):
    def report(seconds: int, details: dict):
        at = (T0 + timedelta(seconds=seconds)).isoformat()
        body = {"agentId": "r1", "timestamp": at, "state": "idle", "details": details}
        return api_client.post("/v1/opscore/agent/r1/state", body, format="json")

    assert report(0, {"capabilities": ["summarise", "classify"]}).status_code == 202
    agent = operator_api_client.get("/v1/opscore/agents/r1").json()
    assert agent["capabilities"] == ["summarise", "classify"]
    assert (agent["capabilitiesKnown"], agent["capabilitiesSource"]) == (True, "report")
    report(1, {"capabilities": ["summarise", "classify"]})  # the same again: no new event
    assert len(events("r1", "agent.capabilities_set")) == 1
    report(-5, {"capabilities": ["older"]})  # out of order: the history keeps it, the capabilities do not change
    assert Agent.objects.get(agent_id="r1").capabilities == ["summarise", "classify"]
    assert report(2, {"capabilities": "summarise"}).status_code == 202  # not a list of strings: ignored
    assert report(3, {"capabilities": [1, 2]}).status_code == 202
    report(4, {})  # no key: nothing changes
    assert Agent.objects.get(agent_id="r1").capabilities == ["summarise", "classify"]
    report(5, {"capabilities": ["translate"]})
    assert Agent.objects.get(agent_id="r1").capabilities == ["translate"]
    assert len(events("r1", "agent.capabilities_set")) == 2


def test_a_report_does_not_override_capabilities_agentkit_registered(api_client):
    services.agent_register(
        agent_id="w1", name="W", version="1", capabilities=["registered"], contact_endpoint="http://w/", metadata={},
        source=AgentSource.WEBHOOK,
    )  # fmt: skip
    body = {"agentId": "w1", "timestamp": T0.isoformat(), "state": "idle", "details": {"capabilities": ["mine"]}}
    assert api_client.post("/v1/opscore/agent/w1/state", body, format="json").status_code == 202
    agent = Agent.objects.get(agent_id="w1")
    assert (agent.capabilities, agent.capabilities_source) == (["registered"], "webhook")
    assert events("w1", "agent.capabilities_set") == []


def test_an_agent_registered_by_webhook_and_listed_unchanged_by_a_poll_is_not_rewritten():
    services.agent_register(
        agent_id="both", name="agent", version="1.0", capabilities=["summarise"], contact_endpoint="http://agent/",
        metadata={}, source=AgentSource.WEBHOOK,
    )  # fmt: skip
    counts = services.agents_sync_listing(listed=[Listed("both")], now=timezone.now())
    assert (counts.added, counts.updated) == (0, 0)
    assert Agent.objects.get(agent_id="both").capabilities_source == "webhook"
