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
