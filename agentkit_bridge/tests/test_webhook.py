from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from lifecycle.models import Agent, AgentStateRecord
from opscore_project.lib.signing import sign
from opscore_project.observability.models import OperationEvent

pytestmark = pytest.mark.django_db

URL = "/v1/opscore/internal/agent/notify"
SECRET = "whsec-test"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.OPSCORE_WEBHOOK_SECRET = SECRET
    return SECRET


def body_of(event_type="REGISTER", agent_id="agent-1", **details) -> bytes:
    agent_details = {
        "agentId": agent_id,
        "agentName": "Summariser",
        "version": "1.0",
        "capabilities": ["summarise"],
        "contactEndpoint": "http://agent:8001/",
        "metadata": {},
    }
    agent_details.update(details)
    return json.dumps({"event_type": event_type, "agent_details": agent_details}, separators=(",", ":")).encode()


def post(body: bytes, *, timestamp: str | None = None, secret: str = SECRET, signature: str | None = None, **headers):
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    if signature is None:
        signature = sign(secret, timestamp, body)
    extra = {"HTTP_X_AGENTKIT_TIMESTAMP": timestamp, "HTTP_X_AGENTKIT_SIGNATURE": signature}
    extra.update(headers)
    content_type = extra.pop("content_type", "application/json")
    return Client().post(URL, data=body, content_type=content_type, **extra)


def test_it_registers_an_agent_signed_with_unix_seconds():
    response = post(body_of())
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "success", "message": "Agent registered."}
    agent = Agent.objects.get(agent_id="agent-1")
    assert (agent.name, agent.version, agent.capabilities, agent.contact_endpoint) == (
        "Summariser",
        "1.0",
        ["summarise"],
        "http://agent:8001/",
    )
    assert agent.capabilities_known and agent.source == "webhook"
    assert agent.registered_at is not None and agent.deregistered_at is None
    types = set(OperationEvent.objects.filter(agent_id="agent-1").values_list("event_type", flat=True))
    assert types == {"agent.discovered", "agent.registered"}


def test_it_accepts_an_iso_timestamp():
    timestamp = datetime.now(UTC).isoformat()
    assert post(body_of(), timestamp=timestamp).status_code == 200
    assert Agent.objects.filter(agent_id="agent-1").exists()


def test_it_verifies_the_raw_bytes_not_reserialised_json():
    raw = (
        b'{ "agent_details" : {"metadata": {}, "agentName": "Spaced",  "agentId": "agent-raw"},'
        b'\n "event_type": "REGISTER" }'
    )
    response = post(raw)
    assert response.status_code == 200, response.content
    assert Agent.objects.get(agent_id="agent-raw").name == "Spaced"


def test_it_rejects_a_tampered_body():
    body = body_of()
    timestamp = str(int(time.time()))
    signature = sign(SECRET, timestamp, body)
    response = post(body.replace(b"Summariser", b"Evil"), timestamp=timestamp, signature=signature)
    assert response.status_code == 401
    assert response.json()["status"] == "error"
    assert not Agent.objects.exists()


def test_it_rejects_a_signature_made_with_another_secret():
    response = post(body_of(), secret="not-the-secret")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_it_rejects_a_stale_webhook(settings):
    settings.OPSCORE_WEBHOOK_TOLERANCE_SECONDS = 300
    stale = str(int(time.time()) - 301)
    response = post(body_of(), timestamp=stale)
    assert response.status_code == 401
    assert "tolerance" in response.json()["message"]


def test_it_rejects_a_timestamp_from_the_future():
    future = (datetime.now(UTC) + timedelta(seconds=400)).isoformat()
    assert post(body_of(), timestamp=future).status_code == 401


def test_a_timestamp_just_inside_the_window_is_accepted():
    assert post(body_of(), timestamp=str(int(time.time()) - 290)).status_code == 200


@pytest.mark.parametrize("missing", ["HTTP_X_AGENTKIT_TIMESTAMP", "HTTP_X_AGENTKIT_SIGNATURE"])
def test_it_rejects_missing_signature_headers(missing):
    body = body_of()
    timestamp = str(int(time.time()))
    headers = {"HTTP_X_AGENTKIT_TIMESTAMP": timestamp, "HTTP_X_AGENTKIT_SIGNATURE": sign(SECRET, timestamp, body)}
    del headers[missing]
    response = Client().post(URL, data=body, content_type="application/json", **headers)
    assert response.status_code == 401


def test_it_rejects_an_unparseable_timestamp():
    assert post(body_of(), timestamp="yesterday").status_code == 401


def test_it_answers_503_when_no_secret_is_configured(settings):
    settings.OPSCORE_WEBHOOK_SECRET = ""
    response = post(body_of())
    assert response.status_code == 503
    assert "OPSCORE_WEBHOOK_SECRET" in response.json()["message"]


def test_it_answers_415_for_a_non_json_content_type():
    response = post(body_of(), content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_json_with_a_charset_is_accepted():
    assert post(body_of(), content_type="application/json; charset=utf-8").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"event_type":"REGISTER"}', "agent_details"),
        (b'{"event_type":"REGISTER","agent_details":{"agentName":"x"}}', "agent_details.agentId"),
        (b'{"event_type":"REGISTER","agent_details":{"agentId":42}}', "agent_details.agentId"),
        (b'{"event_type":"EXPLODE","agent_details":{"agentId":"a"}}', "event_type"),
        (b'{"agent_details":{"agentId":"a"}}', "event_type"),
        (b'{"event_type":"REGISTER","agent_details":{"agentId":"a","capabilities":"x"}}', "agent_details.capabilities"),
        (b'{"event_type":"REGISTER","agent_details":{"agentId":"a","metadata":[]}}', "agent_details.metadata"),
        (b'{"event_type":"REGISTER","agent_details":{"agentId":"a","agentName":7}}', "agent_details.agentName"),
        (b"[1,2]", "body"),
    ],
)
def test_it_rejects_a_malformed_body(body, field):
    response = post(body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Agent.objects.exists()


def test_it_rejects_invalid_json():
    response = post(b"{not json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


def test_the_same_registration_twice_changes_nothing():
    body = body_of()
    now = int(time.time())
    assert post(body, timestamp=str(now)).status_code == 200
    before = Agent.objects.values().get(agent_id="agent-1")
    events = OperationEvent.objects.count()
    response = post(body, timestamp=str(now - 1))  # sent again (another timestamp, so a new signature): idempotent
    assert response.status_code == 200
    assert response.json()["message"] == "Agent already registered; nothing changed."
    assert Agent.objects.values().get(agent_id="agent-1") == before
    assert OperationEvent.objects.count() == events


def test_a_changed_registration_updates_the_details():
    post(body_of())
    post(body_of(capabilities=["summarise", "translate"], version="1.1"))
    agent = Agent.objects.get(agent_id="agent-1")
    assert agent.capabilities == ["summarise", "translate"]
    assert agent.version == "1.1"


def test_deregister_marks_the_agent_deregistered_and_keeps_it():
    post(body_of())
    response = post(body_of("DEREGISTER"))
    assert response.status_code == 200
    assert response.json()["message"] == "Agent deregistered."
    agent = Agent.objects.get(agent_id="agent-1")
    assert agent.deregistered_at is not None
    assert OperationEvent.objects.filter(agent_id="agent-1", event_type="agent.deregistered").count() == 1
    again = post(body_of("DEREGISTER"), timestamp=str(int(time.time()) - 1))
    assert again.status_code == 200
    assert "nothing changed" in again.json()["message"]


def test_registering_again_after_deregistration_reregisters():
    post(body_of(), timestamp=str(int(time.time()) - 2))
    post(body_of("DEREGISTER"), timestamp=str(int(time.time()) - 1))
    post(body_of())
    assert Agent.objects.get(agent_id="agent-1").deregistered_at is None


def test_a_webhook_after_state_reports_fills_in_details_and_keeps_the_current_state(api_client):
    for timestamp, state in (("2026-11-24T09:00:00+00:00", "idle"), ("2026-11-24T09:00:01+00:00", "active")):
        api_client.post(
            "/v1/opscore/agent/agent-1/state",
            {"agentId": "agent-1", "timestamp": timestamp, "state": state, "details": {"k": state}},
            format="json",
        )
    assert post(body_of()).status_code == 200
    agent = Agent.objects.get(agent_id="agent-1")
    assert agent.source == "state_report"  # as first learned
    assert agent.name == "Summariser" and agent.capabilities_known
    assert agent.state == "active" and agent.state_details == {"k": "active"}
    assert agent.state_timestamp == datetime(2026, 11, 24, 9, 0, 1, tzinfo=UTC)
    assert AgentStateRecord.objects.filter(agent=agent).count() == 2


def test_the_endpoint_has_no_trailing_slash_redirect():
    response = Client().post(URL + "/", data=body_of(), content_type="application/json")
    assert response.status_code == 404


def test_it_is_documented_in_the_openapi_schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/v1/opscore/internal/agent/notify" in response.json()["paths"]


def test_a_replayed_deregistration_is_ignored_and_logged(caplog):
    """A captured DEREGISTER sent again within the window must not undo a later registration."""
    deregister, sent_at = body_of("DEREGISTER"), str(int(time.time()) - 2)
    post(body_of(), timestamp=str(int(time.time()) - 3))
    assert post(deregister, timestamp=sent_at).json()["message"] == "Agent deregistered."
    post(body_of(version="2.0"), timestamp=str(int(time.time()) - 1))  # registered again
    assert Agent.objects.get(agent_id="agent-1").deregistered_at is None
    with caplog.at_level("WARNING", logger="agentkit_bridge.apis"):
        replay = post(deregister, timestamp=sent_at)  # the exact captured request
    assert replay.status_code == 200
    assert replay.json()["message"] == "Replay of an earlier delivery; ignored."
    assert Agent.objects.get(agent_id="agent-1").deregistered_at is None
    assert any("replayed AgentKit webhook" in record.getMessage() for record in caplog.records)
