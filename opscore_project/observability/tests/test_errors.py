"""Every error path answers the one error body: {"status": "error", "code", "message", "errors"?}."""

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("opscore_project.observability.tests.urls_for_errors")]


def assert_error_body(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "error"
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"status", "code", "message", "errors"}
    return body


def test_400_validation(api_client):
    body = {"agentId": "a", "timestamp": "yesterday", "state": "idle", "details": {}}
    response = api_client.post("/v1/opscore/agent/a/state", body, format="json")
    assert "timestamp" in assert_error_body(response, 400, "validation_error")["errors"]


def test_400_bad_query_parameter(operator_api_client):
    assert (
        "since"
        in assert_error_body(operator_api_client.get("/v1/opscore/events?since=nope"), 400, "validation_error")[
            "errors"
        ]
    )


def test_400_malformed_json(api_client):
    response = api_client.post("/v1/opscore/test/echo", "{not json", content_type="application/json")
    assert_error_body(response, 400, "malformed_json")


def test_401_without_credentials(anon_client):
    response = assert_error_body(anon_client.get("/v1/opscore/events"), 401, "not_authenticated")
    assert response


def test_401_with_a_wrong_key(anon_client):
    response = anon_client.get("/v1/opscore/events", HTTP_AUTHORIZATION="Bearer wrong")
    assert_error_body(response, 401, "authentication_failed")


def test_404_unknown_api_path(api_client):
    assert_error_body(api_client.get("/v1/opscore/no-such-thing"), 404, "not_found")


def test_404_unknown_object(operator_api_client):
    assert_error_body(operator_api_client.get("/v1/opscore/agents/ghost"), 404, "not_found")


def test_405_on_a_drf_view(operator_api_client):
    response = operator_api_client.delete("/v1/opscore/events")
    assert_error_body(response, 405, "method_not_allowed")


def test_405_on_a_plain_django_view(api_client):
    response = api_client.post("/health")
    assert_error_body(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_405_on_metrics(api_client):
    assert_error_body(api_client.post("/metrics"), 405, "method_not_allowed")


def test_415_unsupported_media_type(api_client):
    response = api_client.post("/v1/opscore/test/echo", "a=b", content_type="text/plain")
    assert_error_body(response, 415, "unsupported_media_type")


def test_500_from_an_exception_in_a_drf_view(api_client):
    response = api_client.get("/v1/opscore/test/boom")
    body = assert_error_body(response, 500, "internal_error")
    assert "RuntimeError" not in str(body) and "hunter2" not in str(body)


def test_500_from_an_exception_in_a_plain_view(api_client):
    api_client.raise_request_exception = False
    response = api_client.get("/v1/opscore/test/plain-boom")
    assert_error_body(response, 500, "internal_error")
    assert response["X-Request-ID"]


@pytest.mark.parametrize("path", ["/v1/opscore/test/db-down", "/v1/opscore/test/plain-db-down"])
def test_503_while_the_database_is_unreachable(api_client, path):
    api_client.raise_request_exception = False
    response = api_client.get(path)
    body = assert_error_body(response, 503, "unavailable")
    assert response["Retry-After"] == "5"
    assert "5432" not in str(body)


def test_html_paths_keep_html_errors(staff_client):
    response = staff_client.get("/no-such-page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
