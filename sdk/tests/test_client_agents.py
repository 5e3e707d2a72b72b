"""Agent and state methods against a live Ops-Core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opscore_sdk import (
    Agent,
    AgentState,
    AuthenticationError,
    NotFoundError,
    OpsCoreClient,
    Page,
    StateRecord,
    ValidationError,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_report_state_then_get_state_round_trips(client):
    at = datetime(2026, 11, 24, 9, 0, 0, 123456, tzinfo=UTC)
    accepted = client.report_state("agent-1", "active", {"progress": 3}, timestamp=at)
    assert accepted.agent_id == "agent-1"
    assert accepted.status == "success"

    state = client.get_state("agent-1")
    assert isinstance(state, AgentState)
    assert state.state == "active"
    assert state.details == {"progress": 3}
    assert state.timestamp == at
    assert state.timestamp.tzinfo is not None
    assert state.raw["agentId"] == "agent-1"


def test_report_state_defaults_to_now(client):
    before = datetime.now(UTC) - timedelta(seconds=1)
    client.report_state("agent-now", "idle")
    assert client.get_state("agent-now").timestamp >= before


def test_get_state_of_unknown_agent_raises_not_found(client):
    with pytest.raises(NotFoundError) as info:
        client.get_state("nobody")
    assert info.value.status_code == 404
    assert info.value.code == "not_found"
    assert info.value.body["status"] == "error"
    assert "nobody" in info.value.message


def test_an_unknown_state_raises_validation_error_with_field_errors(client):
    with pytest.raises(ValidationError) as info:
        client.report_state("agent-1", "sleeping")
    error = info.value
    assert error.status_code == 400
    assert error.code == "validation_error"
    assert "state" in error.errors
    assert "sleeping" in error.errors["state"][0]
    assert "state:" in str(error)


def test_a_naive_timestamp_is_refused_before_sending(client):
    with pytest.raises(ValueError):
        client.report_state("agent-1", "idle", timestamp=datetime(2026, 1, 1))


def test_a_wrong_api_key_raises_authentication_error(base_url):
    with OpsCoreClient(base_url, "wrong-key", retries=0) as bad:
        with pytest.raises(AuthenticationError) as info:
            bad.list_agents()
    assert info.value.status_code == 401
    assert info.value.code in {"authentication_failed", "not_authenticated"}


def test_a_missing_api_key_raises_authentication_error(base_url, monkeypatch):
    monkeypatch.delenv("OPSCORE_API_KEY", raising=False)
    with OpsCoreClient(base_url, retries=0) as anonymous:
        with pytest.raises(AuthenticationError):
            anonymous.get_state("agent-1")


def test_url_and_key_come_from_the_environment(base_url, operator_token, monkeypatch, report):
    api_key = operator_token
    report("env-agent")
    monkeypatch.setenv("OPSCORE_API_URL", base_url + "/")
    monkeypatch.setenv("OPSCORE_API_KEY", api_key)
    with OpsCoreClient() as env_client:
        assert env_client.base_url == base_url
        assert env_client.get_state("env-agent").state == "idle"
        assert api_key not in repr(env_client)


def test_the_default_url_is_the_local_server(monkeypatch):
    monkeypatch.delenv("OPSCORE_API_URL", raising=False)
    assert OpsCoreClient(api_key="k").base_url == "http://127.0.0.1:8080"


def test_list_agents_filters_by_state_and_returns_a_page(client, report):
    report("a-idle", "idle")
    report("a-active", "active")
    page = client.list_agents(state="active")
    assert isinstance(page, Page)
    assert [a.agent_id for a in page] == ["a-active"]
    assert page.count == 1
    assert isinstance(page[0], Agent)
    assert page[0].source == "state_report"
    assert page[0].state_timestamp.tzinfo is not None


def test_list_agents_filters_by_capability(client):
    from lifecycle.models import Agent as AgentRow

    AgentRow.objects.create(agent_id="cap-1", name="Summariser", capabilities=["summarise"], capabilities_known=True)
    AgentRow.objects.create(agent_id="cap-2", name="Translator", capabilities=["translate"], capabilities_known=True)
    assert [a.agent_id for a in client.list_agents(capability="translate")] == ["cap-2"]
    agent = client.get_agent("cap-1")
    assert agent.capabilities == ["summarise"]
    assert agent.name == "Summariser"


def test_an_invalid_filter_raises_validation_error(client):
    with pytest.raises(ValidationError) as info:
        client.list_agents(state="bogus")
    assert "state" in info.value.errors


def test_iter_agents_walks_every_page(client, report):
    for i in range(7):
        report(f"many-{i}")
    first = client.list_agents(page_size=3)
    assert len(first) == 3 and first.count == 7 and first.has_next
    third = client.list_agents(page_size=3, page=3)
    assert len(third) == 1 and not third.has_next
    ids = [a.agent_id for a in client.iter_agents(page_size=3)]
    assert sorted(ids) == [f"many-{i}" for i in range(7)]


def test_get_agent_includes_recent_history(client, report):
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    for i, state in enumerate(["idle", "active", "idle"]):
        report("hist", state, {"n": i}, at=start + timedelta(seconds=i))
    agent = client.get_agent("hist")
    assert agent.state == "idle"
    assert [r.state for r in agent.recent_history] == ["idle", "active", "idle"]
    assert isinstance(agent.recent_history[0], StateRecord)
    assert agent.recent_history[0].timestamp == start + timedelta(seconds=2)
    assert agent.recent_history[0].received_at is not None


def test_agent_history_pages_newest_first(client, report):
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    for i in range(5):
        report("hist2", "active" if i % 2 else "idle", {"n": i}, at=start + timedelta(seconds=i))
    page = client.agent_history("hist2", page_size=2)
    assert [r.details["n"] for r in page] == [4, 3]
    assert page.count == 5
    assert [r.details["n"] for r in client.iter_agent_history("hist2", page_size=2)] == [4, 3, 2, 1, 0]


def test_unknown_agent_raises_not_found(client):
    with pytest.raises(NotFoundError):
        client.get_agent("ghost")
    with pytest.raises(NotFoundError):
        client.agent_history("ghost")
    assert client.agent_exists("ghost") is False


def test_ids_with_special_characters_are_escaped(client):
    client.report_state("team a?agent#1", "idle")
    assert client.get_state("team a?agent#1").agent_id == "team a?agent#1"


def test_health_answers_ok(client):
    assert client.health()["status"] == "ok"
