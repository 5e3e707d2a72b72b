import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from workflows import services
from workflows.models import WorkflowDefinition
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_creating_a_definition_is_idempotent_per_version(operator_api_client):
    body = linear("summarise", "translate", wf_id="chain")
    first = operator_api_client.post("/v1/opscore/workflows", body, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["id"] == "chain" and first.json()["tasks"][0]["nextTaskId"] == "s2"
    again = operator_api_client.post("/v1/opscore/workflows", body, format="json")
    assert again.status_code == 200
    body["tasks"][0]["parameters"] = {"changed": True}
    conflict = operator_api_client.post("/v1/opscore/workflows", body, format="json")
    assert conflict.status_code == 409 and conflict.json()["code"] == "conflict"


def test_an_invalid_definition_is_a_400_naming_the_fields(operator_api_client):
    body = {"id": "bad", "tasks": [{"taskId": "a", "agentCapability": "c", "nextTaskId": "b"},
                                   {"taskId": "a", "agentCapability": "c", "maxRetries": -1}]}  # fmt: skip
    response = operator_api_client.post("/v1/opscore/workflows", body, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert response.json()["code"] == "validation_error"
    assert "tasks[1].taskId" in errors and "tasks[1].maxRetries" in errors


def test_versions_are_listed_and_the_latest_is_served_by_default(operator_api_client):
    v1 = linear("c", wf_id="multi")
    v2 = {**linear("c", "d", wf_id="multi"), "version": "2.0"}
    assert operator_api_client.post("/v1/opscore/workflows", v1, format="json").status_code == 201
    assert operator_api_client.post("/v1/opscore/workflows", v2, format="json").status_code == 201
    assert operator_api_client.get("/v1/opscore/workflows/multi").json()["version"] == "2.0"
    assert len(operator_api_client.get("/v1/opscore/workflows/multi?version=1.0").json()["tasks"]) == 1
    versions = operator_api_client.get("/v1/opscore/workflows/multi/versions").json()
    assert [d["version"] for d in versions["results"]] == ["2.0", "1.0"]
    listing = operator_api_client.get("/v1/opscore/workflows").json()
    assert [(d["id"], d["version"]) for d in listing["results"]] == [("multi", "2.0")]
    assert operator_api_client.get("/v1/opscore/workflows/nope").status_code == 404
    assert operator_api_client.get("/v1/opscore/workflows/multi?version=9").status_code == 404
    assert operator_api_client.get("/v1/opscore/workflows/nope/versions").status_code == 404


def test_load_workflows_loads_json_and_yaml_idempotently(tmp_path):
    out = StringIO()
    call_command("load_workflows", str(SAMPLES), stdout=out)
    assert "sample_workflow v1.0 created" in out.getvalue() and "sample_dag v1.0 created" in out.getvalue()
    out = StringIO()
    call_command("load_workflows", str(SAMPLES / "sample_workflow.json"), stdout=out)
    assert "unchanged" in out.getvalue()
    assert WorkflowDefinition.objects.count() == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "bad", "tasks": [{"taskId": "a", "kind": "robot"}]}))
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("load_workflows", str(bad), stdout=StringIO(), stderr=err)
    assert "tasks[0].kind" in err.getvalue()


def test_the_admin_validates_definitions_in_the_form(staff_client):
    response = staff_client.post(
        "/admin/workflows/workflowdefinition/add/",
        {"document": "id: w\ntasks:\n  - {taskId: a, agentCapability: c, nextTaskId: zz}\n"},
    )
    assert response.status_code == 200
    assert "tasks[0].nextTaskId" in response.content.decode()
    response = staff_client.post(
        "/admin/workflows/workflowdefinition/add/", {"document": "id: w\ntasks:\n  - {taskId: a, agentCapability: c}\n"}
    )
    assert response.status_code == 302
    definition = WorkflowDefinition.objects.get(workflow_id="w")
    assert definition.source == "admin"
    assert staff_client.get(f"/admin/workflows/workflowdefinition/{definition.pk}/change/").status_code == 200


def test_the_openapi_schema_builds(operator_api_client):
    response = operator_api_client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/v1/opscore/sessions/{session_id}/retry" in response.content


def test_a_process_reads_a_definition_once_and_still_sees_new_versions(django_assert_num_queries):
    first, _ = services.definition_create(data=_cached_definition("1"))
    with django_assert_num_queries(2):  # the id, then the row
        read = services.definition_get(workflow_id="cached")
    assert read.pk == first.pk
    with django_assert_num_queries(1):  # the id only: the parsed definition is kept
        assert services.definition_get(workflow_id="cached") is read
    second, _ = services.definition_create(data=_cached_definition("2"))
    assert services.definition_get(workflow_id="cached").pk == second.pk
    assert services.definition_get(workflow_id="cached", version="1").pk == first.pk


def _cached_definition(version: str) -> dict:
    return {
        "id": "cached",
        "version": version,
        "tasks": [{"taskId": "only", "agentCapability": "c", "nextTaskId": None}],
    }
