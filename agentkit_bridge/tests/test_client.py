from __future__ import annotations

import json

import pytest
import requests
import responses

from agentkit_bridge import client
from agentkit_bridge.exceptions import (
    AgentKitMalformedResponse,
    AgentKitRateLimited,
    AgentKitRejected,
    AgentKitServerError,
    AgentKitTimeout,
    AgentKitUnreachable,
    AgentUnknownToAgentKit,
    ListingUnsupported,
)
from agentkit_bridge.tests.conftest import AGENTKIT, listed_agent, listing

RUN_URL = f"{AGENTKIT}/v1/agents/agent-1/run"
ACCEPTED = {
    "status": "success",
    "message": "Task accepted",
    "data": {"agentId": "agent-1", "dispatch_status": "scheduled"},
}


def message() -> dict:
    return client.build_task_message(
        task_name="summarise", parameters={"text": "hi"}, session_id="sess-1", task_run_id="run-1"
    )


def test_the_task_message_is_exactly_the_contract_body():
    assert message() == {
        "senderId": "opscore",
        "messageType": "workflow_task",
        "payload": {"task_name": "summarise", "task_parameters": {"text": "hi"}},
        "sessionContext": {"sessionId": "sess-1"},
        "task_name": "summarise",
        "opscore_session_id": "sess-1",
        "opscore_task_id": "run-1",
    }


def test_run_posts_the_message_with_configured_timeouts(mocked_agentkit, settings):
    settings.AGENTKIT_CONNECT_TIMEOUT, settings.AGENTKIT_READ_TIMEOUT = 1.5, 7.0
    mocked_agentkit.post(RUN_URL, json=ACCEPTED, status=202)
    accepted = client.run("agent-1", message())
    assert accepted.status_code == 202
    assert accepted.dispatch_status == "scheduled"
    call = mocked_agentkit.calls[0]
    assert json.loads(call.request.body) == message()
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.req_kwargs["timeout"] == (1.5, 7.0)


def test_run_quotes_the_agent_id_in_the_path(mocked_agentkit):
    mocked_agentkit.post(f"{AGENTKIT}/v1/agents/a%2Fb/run", json=ACCEPTED, status=202)
    assert client.run("a/b", message()).status_code == 202


def test_run_404_means_the_agent_is_unknown_to_agentkit(mocked_agentkit):
    mocked_agentkit.post(RUN_URL, json={"detail": "Agent not found"}, status=404)
    with pytest.raises(AgentUnknownToAgentKit) as info:
        client.run("agent-1", message())
    assert not info.value.transient
    assert info.value.status_code == 404
    assert info.value.error_kind == "agent_unknown"


@pytest.mark.parametrize("status", [400, 401, 403, 409, 422])
def test_run_other_4xx_is_rejected_with_agentkits_text(mocked_agentkit, status):
    body = {"status": "error", "message": "Agent has no contact endpoint", "error_code": "NO_ENDPOINT"}
    mocked_agentkit.post(RUN_URL, json=body, status=status)
    with pytest.raises(AgentKitRejected) as info:
        client.run("agent-1", message())
    assert not info.value.transient
    assert info.value.status_code == status
    assert "Agent has no contact endpoint (NO_ENDPOINT)" in str(info.value)


def test_run_422_carries_fastapi_detail(mocked_agentkit):
    mocked_agentkit.post(RUN_URL, json={"detail": [{"loc": ["body", "senderId"], "msg": "field required"}]}, status=422)
    with pytest.raises(AgentKitRejected, match="field required"):
        client.run("agent-1", message())


def test_run_429_is_transient_with_retry_after(mocked_agentkit):
    mocked_agentkit.post(RUN_URL, json={"detail": "slow down"}, status=429, headers={"Retry-After": "12"})
    with pytest.raises(AgentKitRateLimited) as info:
        client.run("agent-1", message())
    assert info.value.transient
    assert info.value.retry_after == 12.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_run_5xx_is_a_transient_server_error(mocked_agentkit, status):
    mocked_agentkit.post(RUN_URL, body="Internal Server Error", status=status)
    with pytest.raises(AgentKitServerError) as info:
        client.run("agent-1", message())
    assert info.value.transient
    assert info.value.status_code == status


def test_run_connection_refused_is_unreachable(mocked_agentkit):
    mocked_agentkit.post(RUN_URL, body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(AgentKitUnreachable) as info:
        client.run("agent-1", message())
    assert info.value.transient


def test_run_connect_timeout_is_unreachable(mocked_agentkit):
    mocked_agentkit.post(RUN_URL, body=requests.exceptions.ConnectTimeout("slow connect"))
    with pytest.raises(AgentKitUnreachable):
        client.run("agent-1", message())


def test_run_read_timeout_is_a_timeout(mocked_agentkit):
    mocked_agentkit.post(RUN_URL, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(AgentKitTimeout) as info:
        client.run("agent-1", message())
    assert info.value.transient


def test_run_2xx_without_json_is_malformed(mocked_agentkit):
    mocked_agentkit.post(RUN_URL, body="<html>ok</html>", status=202)
    with pytest.raises(AgentKitMalformedResponse):
        client.run("agent-1", message())


def test_a_real_unreachable_port_is_reported_as_unreachable(settings):
    from opscore_project.testing import free_port

    settings.AGENTKIT_API_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(AgentKitUnreachable):
        client.run("agent-1", message())


def test_list_agents_parses_the_listing(mocked_agentkit):
    mocked_agentkit.get(
        f"{AGENTKIT}/v1/agents",
        json=listing(
            listed_agent("a1", metadata={"description": "x"}),
            listed_agent("a2", capabilities=None, version=None, contactEndpoint=None, metadata=None),
            {"agentName": "no id"},
            "junk",
        ),
    )
    agents = client.list_agents()
    assert [a.agent_id for a in agents] == ["a1", "a2"]
    assert agents[0] == client.ListedAgent(
        agent_id="a1",
        name="name-a1",
        version="1.0",
        capabilities=["summarise"],
        contact_endpoint="http://a1.test/",
        metadata={"description": "x"},
    )
    assert agents[1] == client.ListedAgent(agent_id="a2", name="name-a2")
    assert mocked_agentkit.calls[0].request.req_kwargs["timeout"] == (3.0, 10.0)


@pytest.mark.parametrize("status", [404, 405])
def test_list_agents_404_or_405_means_listing_unsupported(mocked_agentkit, status):
    mocked_agentkit.get(f"{AGENTKIT}/v1/agents", json={"detail": "Not Found"}, status=status)
    with pytest.raises(ListingUnsupported) as info:
        client.list_agents()
    assert not info.value.transient


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status": 500, "body": "boom"}, AgentKitServerError),
        ({"status": 429, "json": {}}, AgentKitRateLimited),
        ({"status": 401, "json": {"detail": "no"}}, AgentKitRejected),
        ({"status": 200, "json": {"status": "success", "data": {"not": "a list"}}}, AgentKitMalformedResponse),
        ({"status": 200, "json": [1, 2]}, AgentKitMalformedResponse),
        ({"status": 200, "body": "not json"}, AgentKitMalformedResponse),
        ({"body": requests.exceptions.ConnectionError("refused")}, AgentKitUnreachable),
        ({"body": requests.exceptions.ReadTimeout("slow")}, AgentKitTimeout),
    ],
)
def test_list_agents_errors(mocked_agentkit, answer, error):
    mocked_agentkit.get(f"{AGENTKIT}/v1/agents", **answer)
    with pytest.raises(error):
        client.list_agents()


def test_one_session_is_reused():
    assert client.get_session() is client.get_session()


def test_the_environment_proxy_is_read_once_for_agentkit(monkeypatch, settings):
    settings.AGENTKIT_API_URL = "http://agentkit.internal:8000"
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setattr(client, "_session", None)
    session = client.get_session()
    assert session.proxies.get("http") == "http://proxy.internal:3128"
    assert session.trust_env is False  # not looked up again on every request
    monkeypatch.setattr(client, "_session", None)
    monkeypatch.setenv("NO_PROXY", "agentkit.internal")
    assert "http" not in client.get_session().proxies
    monkeypatch.setattr(client, "_session", None)


@responses.activate
def test_the_base_url_comes_from_settings(settings):
    settings.AGENTKIT_API_URL = "http://other.test:9000/"
    responses.get("http://other.test:9000/v1/agents", json=listing())
    assert client.list_agents() == []
