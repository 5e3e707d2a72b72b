import json

import pytest

from lifecycle.models import Agent, AgentSource, AgentStateRecord

pytestmark = pytest.mark.django_db

URL = "/v1/opscore/agent/agent-1/state"


def test_a_report_exactly_as_the_contract_shows_is_accepted(api_client, api_key):
    raw = b'{"agentId":"agent-1","timestamp":"2026-11-24T09:00:00.123456+00:00","state":"active","details":{}}'
    response = api_client.generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "State update accepted.", "agentId": "agent-1"}
    agent = Agent.objects.get(agent_id="agent-1")
    assert agent.state == "active"
    assert agent.state_timestamp.isoformat() == "2026-11-24T09:00:00.123456+00:00"
    assert AgentStateRecord.objects.filter(agent=agent).count() == 1


def test_spaced_json_from_older_clients_and_z_timestamps_are_accepted(api_client):
    raw = json.dumps({"state": "idle", "agentId": "agent-1", "details": None, "timestamp": "2026-11-24T09:00:00Z"})
    response = api_client.generic("POST", URL, raw, content_type="application/json; charset=utf-8")
    assert response.status_code == 202
    record = AgentStateRecord.objects.get()
    assert record.details == {}


def test_omitted_details_is_stored_as_an_empty_object(api_client):
    raw = json.dumps({"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00+00:00", "state": "idle"})
    assert api_client.generic("POST", URL, raw, content_type="application/json").status_code == 202
    assert AgentStateRecord.objects.get().details == {}


def test_an_unknown_agent_is_created_from_its_report(post_state):
    assert post_state("newcomer", state="idle").status_code == 202
    agent = Agent.objects.get(agent_id="newcomer")
    assert agent.source == AgentSource.STATE_REPORT
    assert agent.capabilities_known is False
    assert agent.name == ""
    assert agent.last_seen_at is not None


def test_details_are_stored_in_the_history(post_state):
    details = {"result": {"summary": "ok"}, "n": 3}
    assert post_state(state="idle", details=details).status_code == 202
    assert AgentStateRecord.objects.get().details == details
    assert Agent.objects.get().state_details == details


def test_out_of_order_report_does_not_overwrite_current_state(post_state):
    assert post_state(state="active", timestamp="2026-11-24T09:00:02+00:00").status_code == 202
    assert post_state(state="idle", timestamp="2026-11-24T09:00:01+00:00").status_code == 202
    agent = Agent.objects.get()
    assert agent.state == "active"
    assert agent.state_timestamp.isoformat() == "2026-11-24T09:00:02+00:00"
    assert list(AgentStateRecord.objects.order_by("reported_at").values_list("state", flat=True)) == [
        "idle",
        "active",
    ]


def test_a_newer_report_replaces_the_current_state(post_state):
    post_state(state="idle", timestamp="2026-11-24T09:00:01+00:00")
    post_state(state="active", timestamp="2026-11-24T09:00:02+00:00")
    assert Agent.objects.get().state == "active"


def test_an_exact_duplicate_is_stored_once(post_state):
    for _ in range(3):
        assert post_state(state="idle", timestamp="2026-11-24T09:00:01+00:00").status_code == 202
    assert AgentStateRecord.objects.count() == 1


def test_same_timestamp_with_another_state_is_a_different_report(post_state):
    post_state(state="active", timestamp="2026-11-24T09:00:01+00:00")
    post_state(state="idle", timestamp="2026-11-24T09:00:01+00:00")
    assert AgentStateRecord.objects.count() == 2


def test_every_accepted_state_name_is_accepted(post_state):
    for second, state in enumerate(["initializing", "idle", "active", "error", "finished"]):
        assert post_state(state=state, timestamp=f"2026-11-24T09:00:0{second}+00:00").status_code == 202
    assert AgentStateRecord.objects.count() == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timestamp": "2026-11-24T09:00:00+00:00", "state": "idle"}, "agentId"),
        ({"agentId": "agent-1", "state": "idle"}, "timestamp"),
        ({"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00+00:00"}, "state"),
        ({"agentId": "agent-1", "timestamp": "yesterday", "state": "idle"}, "timestamp"),
        ({"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00", "state": "idle"}, "timestamp"),
        ({"agentId": "agent-1", "timestamp": 1764000000, "state": "idle"}, "timestamp"),
        ({"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00+00:00", "state": "sleeping"}, "state"),
        ({"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00+00:00", "state": "idle", "details": []}, "details"),
        ({"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00+00:00", "state": "idle", "details": "x"}, "details"),
        ({"agentId": "agent-2", "timestamp": "2026-11-24T09:00:00+00:00", "state": "idle"}, "agentId"),
        ({"agentId": 7, "timestamp": "2026-11-24T09:00:00+00:00", "state": "idle"}, "agentId"),
    ],
)
def test_invalid_bodies_are_rejected_naming_the_field(api_client, body, field):
    response = api_client.generic("POST", URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    payload = response.json()
    assert payload["status"] == "error"
    assert payload["code"] == "validation_error"
    assert field in payload["errors"]
    assert not Agent.objects.exists()
    assert not AgentStateRecord.objects.exists()


def test_several_bad_fields_are_all_named(api_client):
    response = api_client.generic("POST", URL, json.dumps({"state": "nope"}), content_type="application/json")
    assert response.status_code == 400
    assert {"agentId", "timestamp", "state"} <= set(response.json()["errors"])


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"agentId": "agent-1",', b"\xff\xfe"])
def test_malformed_json_is_a_400(api_client, raw):
    response = api_client.generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert "body" in response.json()["errors"]
    assert not AgentStateRecord.objects.exists()


@pytest.mark.parametrize("raw", [b"[]", b'"idle"', b"null"])
def test_a_json_value_that_is_not_an_object_is_a_400(api_client, raw):
    response = api_client.generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"]["body"] == ["Expected a JSON object."]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_wrong_content_type_is_a_400_naming_the_header(api_client, content_type):
    raw = json.dumps({"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00+00:00", "state": "idle"})
    response = api_client.generic("POST", URL, raw, content_type=content_type)
    assert response.status_code == 400
    assert "Content-Type" in response.json()["errors"]
    assert not AgentStateRecord.objects.exists()


def test_the_path_is_served_without_a_trailing_slash_and_never_redirects(api_client):
    raw = json.dumps({"agentId": "agent-1", "timestamp": "2026-11-24T09:00:00+00:00", "state": "idle"})
    response = api_client.generic("POST", URL + "/", raw, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_get_state_returns_the_current_state(post_state, api_client):
    post_state(state="active", timestamp="2026-11-24T09:00:01+00:00", details={"task": "x"})
    response = api_client.get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "agentId": "agent-1",
        "state": "active",
        "details": {"task": "x"},
        "timestamp": "2026-11-24T09:00:01Z",
    }


def test_get_state_of_an_agent_without_state_is_a_404(api_client):
    Agent.objects.create(agent_id="registered-only", source=AgentSource.WEBHOOK)
    for agent_id in ("registered-only", "never-heard-of"):
        response = api_client.get(f"/v1/opscore/agent/{agent_id}/state")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_a_report_from_the_future_is_refused_naming_the_timestamp(post_state):
    from datetime import timedelta

    from django.utils import timezone

    ahead = (timezone.now() + timedelta(hours=1)).isoformat()
    response = post_state("agent-1", timestamp=ahead)
    assert response.status_code == 400
    assert "timestamp" in response.json()["errors"]
    assert not AgentStateRecord.objects.exists() and not Agent.objects.exists()
    # the agent's real reports keep working afterwards
    assert post_state("agent-1", timestamp=timezone.now().isoformat()).status_code == 202


def test_a_small_clock_skew_is_tolerated_and_the_limit_is_a_setting(post_state, settings):
    from datetime import timedelta

    from django.utils import timezone

    assert post_state("agent-1", timestamp=(timezone.now() + timedelta(seconds=60)).isoformat()).status_code == 202
    settings.OPSCORE_MAX_CLOCK_SKEW_SECONDS = 10
    response = post_state("agent-1", timestamp=(timezone.now() + timedelta(seconds=60)).isoformat())
    assert response.status_code == 400 and "timestamp" in response.json()["errors"]
