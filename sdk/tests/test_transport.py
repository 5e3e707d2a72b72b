"""Retries, backoff and error mapping at the transport level (scripted server: no database needed)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from opscore_sdk import (
    APIError,
    NotFoundError,
    OpsCoreClient,
    OpsCoreConnectionError,
    OpsCoreTimeoutError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ValidationError,
)
from opscore_sdk._http import RetryPolicy
from opscore_sdk.exceptions import parse_retry_after

from sdk.tests.faults import FaultServer, Reply, refused_url

KEY = "s3cret-key-value"
STATE = {"agentId": "a", "state": "idle", "details": {}, "timestamp": "2026-11-24T09:00:00+00:00"}
STARTED = {"sessionId": "s-1", "workflowId": "wf", "workflowVersion": "1", "message": "started"}
UNAVAILABLE = Reply(503, {"status": "error", "code": "unavailable", "message": "Down for a moment."})


def make_client(url: str, retries: int = 3, timeout: float = 5) -> OpsCoreClient:
    return OpsCoreClient(url, KEY, timeout=timeout, retries=retries, backoff_factor=0.01, max_backoff=0.05)


def test_a_get_is_retried_after_503_and_then_succeeds():
    with FaultServer(UNAVAILABLE, Reply(502, "bad gateway"), Reply(200, STATE)) as server:
        with make_client(server.url) as client:
            assert client.get_state("a").state == "idle"
    assert len(server.seen) == 3


def test_retries_give_up_with_a_server_error():
    with FaultServer(UNAVAILABLE) as server:
        with make_client(server.url, retries=2) as client, pytest.raises(ServerError) as info:
            client.get_state("a")
    assert len(server.seen) == 3
    assert info.value.status_code == 503
    assert info.value.code == "unavailable"
    assert info.value.message == "Down for a moment."


def test_a_500_is_not_retried():
    with FaultServer(Reply(500, {"status": "error", "code": "internal_error", "message": "Boom."})) as server:
        with make_client(server.url) as client, pytest.raises(ServerError):
            client.get_state("a")
    assert len(server.seen) == 1


def test_a_post_without_idempotency_key_is_not_retried():
    with FaultServer(UNAVAILABLE, Reply(202, {"status": "success", "agentId": "a"})) as server:
        with make_client(server.url) as client, pytest.raises(ServerError):
            client.report_state("a", "idle")
    assert len(server.seen) == 1


def test_a_post_with_idempotency_key_is_retried_with_the_same_key():
    with FaultServer(UNAVAILABLE, Reply(202, STARTED)) as server:
        with make_client(server.url) as client:
            started = client.trigger_workflow("wf", idempotency_key="key-1", initial_payload={"x": 1})
    assert started.session_id == "s-1"
    assert [s.headers.get("Idempotency-Key") for s in server.seen] == ["key-1", "key-1"]


def test_trigger_generates_an_idempotency_key_when_none_is_given():
    with FaultServer(UNAVAILABLE, Reply(202, STARTED)) as server:
        with make_client(server.url) as client:
            client.trigger_agent_workflow("agent-1", workflow_id="wf")
    keys = {s.headers.get("Idempotency-Key") for s in server.seen}
    assert len(server.seen) == 2 and len(keys) == 1 and None not in keys


@pytest.mark.parametrize("status", [400, 401, 404, 409, 429])
def test_a_4xx_is_never_retried(status):
    with FaultServer(Reply(status, {"status": "error", "code": "x", "message": "no"})) as server:
        with make_client(server.url) as client, pytest.raises(APIError):
            client.trigger_workflow("wf", idempotency_key="k")
    assert len(server.seen) == 1


def test_429_carries_retry_after_seconds():
    body = {"status": "error", "code": "rate_limited", "message": "Request was throttled."}
    with FaultServer(Reply(429, body, {"Retry-After": "7"})) as server:
        with make_client(server.url) as client, pytest.raises(RateLimitedError) as info:
            client.list_agents()
    assert info.value.retry_after == 7
    assert info.value.status_code == 429
    assert info.value.code == "rate_limited"


def test_retry_after_accepts_an_http_date():
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= parse_retry_after(format_datetime(when, usegmt=True)) <= 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_403_maps_to_permission_denied():
    body = {"status": "error", "code": "permission_denied", "message": "Staff only."}
    with FaultServer(Reply(403, body)) as server:
        with make_client(server.url) as client, pytest.raises(PermissionDeniedError) as info:
            client.list_sessions()
    assert info.value.body == body


def test_an_unmapped_4xx_is_an_api_error_and_non_json_bodies_are_kept():
    with FaultServer(Reply(405, b"<html>nope</html>")) as server:
        with make_client(server.url) as client, pytest.raises(APIError) as info:
            client.get_state("a")
    assert type(info.value) is APIError
    assert info.value.status_code == 405
    assert info.value.body == "<html>nope</html>"


def test_validation_error_without_field_errors():
    with FaultServer(Reply(400, {"status": "error", "code": "malformed_json", "message": "Bad JSON."})) as server:
        with make_client(server.url) as client, pytest.raises(ValidationError) as info:
            client.report_state("a", "idle")
    assert info.value.errors == {}
    assert info.value.code == "malformed_json"


def test_connection_refused_is_retried_then_raised():
    sleeps: list[float] = []
    client = make_client(refused_url(), retries=2)
    client._transport._sleep = sleeps.append
    with client, pytest.raises(OpsCoreConnectionError) as info:
        client.list_agents()
    assert len(sleeps) == 2
    assert "Cannot connect" in info.value.message
    assert info.value.status_code is None


def test_a_timeout_is_retried_for_a_get_and_raised():
    with FaultServer(Reply(200, STATE, delay=0.5)) as server:
        with make_client(server.url, retries=1, timeout=0.1) as client, pytest.raises(OpsCoreTimeoutError):
            client.get_state("a")
        assert len(server.seen) == 2


def test_a_timeout_on_a_post_without_key_is_not_retried():
    with FaultServer(Reply(202, {}, delay=0.5)) as server:
        with make_client(server.url, retries=3, timeout=0.1) as client, pytest.raises(OpsCoreTimeoutError):
            client.cancel_session("s-1")
        assert len(server.seen) == 1


def test_a_not_found_is_raised_at_once():
    with FaultServer(Reply(404, {"status": "error", "code": "not_found", "message": "No such session."})) as server:
        with make_client(server.url) as client, pytest.raises(NotFoundError):
            client.get_session("nope")
    assert len(server.seen) == 1


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(retries=5, backoff_factor=1.0, max_backoff=4.0)
    assert 0.75 <= policy.delay(1) <= 1.25
    assert 1.5 <= policy.delay(2) <= 2.5
    assert policy.delay(6) <= 5.0
    assert policy.delay(1, retry_after=100) == 4.0


def test_the_api_key_is_sent_but_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    with FaultServer(UNAVAILABLE, Reply(200, STATE)) as server:
        with make_client(server.url) as client:
            client.get_state("a")
    assert server.seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert caplog.records, "the client logs its requests"
    assert all(KEY not in r.getMessage() and "Authorization" not in r.getMessage() for r in caplog.records)
    assert any("/v1/opscore/agent/a/state" in r.getMessage() for r in caplog.records)
