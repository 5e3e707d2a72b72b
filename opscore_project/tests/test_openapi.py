import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.validation import validate_schema


@pytest.mark.django_db
def test_the_schema_generates_without_warnings_and_validates(tmp_path, capsys):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(target), "--fail-on-warn", "--validate")
    schema = yaml.safe_load(target.read_text())
    validate_schema(schema)
    paths = schema["paths"]
    assert "/v1/opscore/agent/{agent_id}/state" in paths
    post = paths["/v1/opscore/agent/{agent_id}/state"]["post"]
    assert {"202", "400", "401"} <= set(post["responses"])
    assert post["security"][0].keys() >= {"bearerAuth"}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/", "/api/redoc/"])
def test_the_docs_pages_are_served(client, url):
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_the_docs_assets_are_local(client):
    page = client.get("/api/docs/").content.decode()
    assert "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/" in page
    assert client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200


def _schema(client) -> dict:
    return yaml.safe_load(client.get("/api/schema/").content)


LISTS = [
    "/v1/opscore/agents",
    "/v1/opscore/agents/{agent_id}/history",
    "/v1/opscore/events",
    "/v1/opscore/sessions",
    "/v1/opscore/workflows",
    "/v1/opscore/workflows/{workflow_id}/versions",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", LISTS)
def test_list_endpoints_are_documented_as_the_paginated_object_they_answer(client, path):
    schema = _schema(client)
    operation = schema["paths"][path]["get"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(component["properties"]) == {"count", "next", "previous", "results"}
    assert component["properties"]["results"]["type"] == "array"
    assert "404" in operation["responses"]  # a page past the end
    assert {p["name"] for p in operation["parameters"]} >= {"page", "page_size"}


@pytest.mark.django_db
def test_every_operation_documents_the_errors_it_can_answer(client):
    for path, operations in _schema(client)["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "400" in codes, (method, path)
            if any(operation.get("security", [])) and path != "/v1/opscore/internal/agent/notify":
                assert {"401", "403", "429"} <= codes, (method, path)
            if "requestBody" in operation and operation["operationId"] != "agent_state_report":
                assert "415" in codes, (method, path)


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["0", "2", "-1", "x"])
def test_a_page_outside_the_list_is_a_documented_404(operator_api_client, page):
    response = operator_api_client.get(f"/v1/opscore/workflows?page={page}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
