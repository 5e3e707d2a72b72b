import json

import pytest

pytestmark = pytest.mark.django_db

REPORT = {"agentId": "agent-7", "timestamp": "2026-11-24T09:00:00+00:00", "state": "idle", "details": {}}


def test_a_valid_incoming_request_id_is_echoed_and_logged(operator_api_client, json_logs):
    response = operator_api_client.get("/v1/opscore/agents", HTTP_X_REQUEST_ID="client-req-0001")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "client-req-0001"
    (line,) = json_logs.find(logger="opscore.request")
    assert line["request_id"] == "client-req-0001"
    assert line["method"] == "GET" and line["path"] == "/v1/opscore/agents" and line["status"] == 200
    assert isinstance(line["duration_ms"], float)


@pytest.mark.parametrize("bad", ["short", "x" * 65, "evil\nheader-injection", "spaces are bad", "<script>1234"])
def test_an_invalid_request_id_is_replaced_by_a_generated_one(api_client, bad):
    response = api_client.get("/v1/opscore/agents", HTTP_X_REQUEST_ID=bad)
    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32


def test_every_response_gets_a_request_id_even_errors(anon_client):
    response = anon_client.get("/v1/opscore/agents")
    assert response.status_code == 401
    assert len(response["X-Request-ID"]) == 32


def test_the_request_line_names_the_agent_from_the_url(api_client, json_logs):
    api_client.post("/v1/opscore/agent/agent-7/state", REPORT, format="json", HTTP_X_REQUEST_ID="req-agent-0007")
    (request_line,) = json_logs.find(logger="opscore.request")
    assert request_line["agent_id"] == "agent-7"
    assert request_line["status"] == 202
    # The operation logged inside the request carries the same ids.
    (operation_line,) = json_logs.find(logger="opscore.operations", event_type="agent.discovered")
    assert operation_line["request_id"] == "req-agent-0007"
    assert operation_line["agent_id"] == "agent-7"


def test_log_lines_are_json_and_never_contain_the_api_key(api_client, anon_client, api_key, json_logs):
    import logging

    api_client.get("/v1/opscore/agents")
    anon_client.get("/v1/opscore/agents", HTTP_AUTHORIZATION="Bearer not-the-key-but-secret-ish")
    logging.getLogger("opscore.test").warning("calling with Authorization: Bearer %s", api_key)
    logging.getLogger("opscore.test").info("config", extra={"api_key": api_key, "headers": {"Authorization": "x"}})
    lines = json_logs.lines()  # parses every line
    assert len(lines) >= 4
    assert api_key not in json_logs.text
    assert "not-the-key-but-secret-ish" not in json_logs.text
    assert json_logs.find(logger="opscore.test", api_key="[REDACTED]")
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)


@pytest.mark.urls("opscore_project.observability.tests.urls_for_errors")
def test_an_unexpected_exception_is_logged_with_the_request_id_and_no_secret(api_client, json_logs):
    response = api_client.get("/v1/opscore/test/boom", HTTP_X_REQUEST_ID="req-boom-0001")
    assert response.status_code == 500
    (error_line,) = json_logs.find(logger="opscore_project.errors")
    assert error_line["request_id"] == "req-boom-0001"
    assert "RuntimeError" in error_line["exc"]
    assert "hunter2" not in json_logs.text
    assert "hunter2" not in response.content.decode()


def test_plain_format_is_available(settings):
    from opscore_project.observability.logs import PlainFormatter

    assert settings.LOGGING["handlers"]["console"]["formatter"] in {"json", "plain"}
    assert settings.LOGGING["formatters"]["json"]["()"].endswith("JsonFormatter")
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["idle_sweep", "redact", "context"]
    import logging

    record = logging.LogRecord("x", logging.INFO, "x", 0, "hello %s", ("world",), None)
    assert "hello world" in PlainFormatter().format(record)
    json.dumps(settings.LOGGING)  # the config is plain data
