"""Failed authentication is limited per client address, writes per key; counters live in Redis."""

import pytest
from django.core.cache import caches
from django.utils import timezone
from rest_framework.test import APIClient

from opscore_project.authn.throttling import blocked_addresses

pytestmark = pytest.mark.django_db


def client_from(address: str, key: str | None = None) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def report(agent_id: str = "a1") -> dict:
    return {"agentId": agent_id, "timestamp": timezone.now().isoformat(), "state": "idle", "details": {}}


def assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_failed_authentication_is_limited_per_address(settings, api_key, operator_token):
    settings.OPSCORE_THROTTLE_FAILED_AUTH = "3/minute"
    attacker = client_from("203.0.113.7", "guess")
    for _ in range(3):
        assert attacker.get("/v1/opscore/workflows").status_code == 401
    assert_throttled(attacker.get("/v1/opscore/workflows"))
    # blocked: even a correct key from that address waits, on the DRF path, the state fast path and /metrics
    assert_throttled(client_from("203.0.113.7", operator_token).get("/v1/opscore/workflows"))
    assert_throttled(client_from("203.0.113.7", api_key).post("/v1/opscore/agent/a1/state", report(), format="json"))
    assert_throttled(client_from("203.0.113.7", api_key).get("/metrics"))
    # other addresses are not affected
    assert client_from("198.51.100.9", operator_token).get("/v1/opscore/workflows").status_code == 200
    ok = client_from("198.51.100.9", api_key).post("/v1/opscore/agent/a1/state", report(), format="json")
    assert ok.status_code == 202


def test_the_failure_count_is_shared_through_redis(settings):
    """Another process (here: this one with its memory of blocks wiped) sees the same count."""
    settings.OPSCORE_THROTTLE_FAILED_AUTH = "2/minute"
    attacker = client_from("203.0.113.8")
    for _ in range(2):
        attacker.post("/v1/opscore/agent/a1/state", report(), format="json", HTTP_AUTHORIZATION="Bearer nope")
    blocked_addresses.clear()
    assert caches["default"].__class__.__name__ == "RedisCache"
    third = attacker.post("/v1/opscore/agent/a1/state", report(), format="json", HTTP_AUTHORIZATION="Bearer nope")
    assert_throttled(third)


def test_valid_requests_do_not_count_as_failures(settings, api_key):
    settings.OPSCORE_THROTTLE_FAILED_AUTH = "2/minute"
    agent = client_from("203.0.113.9", api_key)
    for _ in range(5):
        assert agent.post("/v1/opscore/agent/a1/state", report(), format="json").status_code == 202


def test_writes_are_limited_per_key(settings, make_token):
    from workflows.tests.conftest import linear

    settings.OPSCORE_THROTTLE_WRITES = "2/minute"
    ci = client_from("198.51.100.1", make_token("operator", name="ci"))
    assert ci.post("/v1/opscore/workflows", linear("c", wf_id="w1"), format="json").status_code == 201
    assert ci.post("/v1/opscore/workflows", linear("c", wf_id="w2"), format="json").status_code == 201
    assert_throttled(ci.post("/v1/opscore/workflows", linear("c", wf_id="w3"), format="json"))
    assert ci.get("/v1/opscore/workflows").status_code == 200  # reads are not writes
    other = client_from("198.51.100.1", make_token("operator", name="other"))
    assert other.post("/v1/opscore/workflows", linear("c", wf_id="w4"), format="json").status_code == 201


def test_state_reports_are_not_write_limited(settings, api_key):
    settings.OPSCORE_THROTTLE_WRITES = "2/minute"
    agent = client_from("198.51.100.2", api_key)
    for _ in range(5):
        assert agent.post("/v1/opscore/agent/a1/state", report(), format="json").status_code == 202
