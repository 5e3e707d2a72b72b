from datetime import timedelta

import pytest
from django.utils import timezone

from lifecycle import services
from lifecycle.models import Agent, AgentSource

pytestmark = pytest.mark.django_db


def make_agent(agent_id: str, *, capabilities=None, state: str = "", deregistered: bool = False, seen_ago=None):
    now = timezone.now()
    return Agent.objects.create(
        agent_id=agent_id,
        name=agent_id.title(),
        source=AgentSource.WEBHOOK,
        capabilities=capabilities or [],
        capabilities_known=capabilities is not None,
        state=state,
        registered_at=now,
        deregistered_at=now if deregistered else None,
        last_seen_at=now - seen_ago if seen_ago else now,
    )


def ids(response) -> list[str]:
    return [agent["agentId"] for agent in response.json()["results"]]


def test_agents_are_listed_with_their_fields(operator_api_client):
    make_agent("a1", capabilities=["summarise"], state="idle")
    response = operator_api_client.get("/v1/opscore/agents")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    agent = body["results"][0]
    assert agent["agentId"] == "a1"
    assert agent["capabilities"] == ["summarise"]
    assert agent["registered"] is True
    assert agent["stale"] is False
    assert agent["busy"] is False


def test_agents_filter_by_state_capability_and_registration(operator_api_client):
    make_agent("a1", capabilities=["summarise", "translate"], state="idle")
    make_agent("a2", capabilities=["translate"], state="active")
    make_agent("a3", capabilities=["summarise"], state="idle", deregistered=True)
    make_agent("a4", state="idle")  # capabilities unknown
    assert ids(operator_api_client.get("/v1/opscore/agents?state=idle")) == ["a1", "a3", "a4"]
    assert ids(operator_api_client.get("/v1/opscore/agents?capability=summarise")) == ["a1", "a3"]
    assert ids(operator_api_client.get("/v1/opscore/agents?registered=true&capability=summarise")) == ["a1"]
    assert ids(operator_api_client.get("/v1/opscore/agents?registered=false")) == ["a3"]
    assert ids(operator_api_client.get("/v1/opscore/agents?search=A2")) == ["a2"]


def test_stale_agents_can_be_filtered(operator_api_client, settings):
    settings.OPSCORE_AGENT_STALE_SECONDS = 60
    make_agent("fresh")
    make_agent("silent", seen_ago=timedelta(minutes=5))
    assert ids(operator_api_client.get("/v1/opscore/agents?stale=true")) == ["silent"]
    assert ids(operator_api_client.get("/v1/opscore/agents?stale=false")) == ["fresh"]


def test_bad_filters_are_400(operator_api_client):
    assert operator_api_client.get("/v1/opscore/agents?state=sleeping").json()["errors"].keys() == {"state"}
    assert operator_api_client.get("/v1/opscore/agents?registered=maybe").status_code == 400


def test_one_agent_comes_with_its_recent_history(operator_api_client):
    for second in range(25):
        services.agent_state_report(
            agent_id="a1",
            state="idle" if second % 2 else "active",
            details={"n": second},
            reported_at=timezone.now().replace(microsecond=0) + timedelta(seconds=second),
        )
    response = operator_api_client.get("/v1/opscore/agents/a1")
    assert response.status_code == 200
    history = response.json()["recentHistory"]
    assert len(history) == 20
    assert history[0]["details"] == {"n": 24}


def test_unknown_agent_is_404(operator_api_client):
    for url in ("/v1/opscore/agents/ghost", "/v1/opscore/agents/ghost/history"):
        response = operator_api_client.get(url)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_history_is_paginated_newest_first(operator_api_client):
    start = timezone.now().replace(microsecond=0)
    for second in range(7):
        services.agent_state_report(
            agent_id="a1", state="idle", details={"n": second}, reported_at=start + timedelta(seconds=second)
        )
    page1 = operator_api_client.get("/v1/opscore/agents/a1/history?page_size=3").json()
    assert page1["count"] == 7
    assert [r["details"]["n"] for r in page1["results"]] == [6, 5, 4]
    page3 = operator_api_client.get("/v1/opscore/agents/a1/history?page_size=3&page=3").json()
    assert [r["details"]["n"] for r in page3["results"]] == [0]
    assert page3["next"] is None


def test_a_page_past_the_end_is_a_404_in_the_error_shape(operator_api_client):
    make_agent("a1")
    response = operator_api_client.get("/v1/opscore/agents?page=9")
    assert response.status_code == 404
    assert response.json()["status"] == "error"
