"""Workflow definitions, triggering and sessions through the client, against a live Ops-Core.

No Celery worker runs here, so sessions stay pending/running unless the test ends them (cancel); the full run to
completion with the mock AgentKit is in ``test_end_to_end.py``.
"""

from __future__ import annotations

import json

import pytest
import yaml
from opscore_sdk import (
    ConflictError,
    NotFoundError,
    Session,
    SessionStarted,
    SessionWaitTimeout,
    ValidationError,
    WorkflowDefinition,
)

from sdk.tests.conftest import needs_workflow_api
from sdk.tests.workflow_data import DEFINITION, definition, make_agents

pytestmark = [pytest.mark.django_db(transaction=True), needs_workflow_api]


@pytest.fixture
def stored(client) -> WorkflowDefinition:
    make_agents()
    return client.create_workflow(DEFINITION)


def test_create_and_get_a_definition(client, stored):
    assert isinstance(stored, WorkflowDefinition)
    assert (stored.id, stored.version, stored.name) == ("sdk_test_workflow", "1.0", "SDK test workflow")
    assert [t.task_id for t in stored.tasks] == ["step_1", "step_2"]
    assert stored.tasks[0].agent_capability == "summarise"
    assert stored.tasks[0].next_task_id == "step_2"
    assert stored.tasks[0].parameters == {"length": "short"}
    assert stored.capabilities == ["summarise", "translate"]
    fetched = client.get_workflow("sdk_test_workflow")
    assert fetched.id == stored.id and fetched.version == "1.0"
    assert client.get_workflow("sdk_test_workflow", version="1.0").version == "1.0"


def test_creating_the_same_definition_twice_is_harmless(client, stored):
    again = client.create_workflow(DEFINITION)
    assert again.id == stored.id and again.version == stored.version


def test_same_version_with_other_content_raises_conflict(client, stored):
    with pytest.raises(ConflictError) as info:
        client.create_workflow(definition(description="Something else"))
    assert info.value.status_code == 409


def test_an_invalid_definition_raises_validation_error_naming_fields(client):
    with pytest.raises(ValidationError) as info:
        client.create_workflow({"id": "broken", "name": "Broken", "version": "1", "tasks": "not a list"})
    assert info.value.status_code == 400
    assert any("tasks" in name for name in info.value.errors)


def test_versions_and_lists(client, stored):
    client.create_workflow(definition(version="2.0", description="v2"))
    client.create_workflow(definition(id="sdk_other", name="Other"))
    versions = client.list_workflow_versions("sdk_test_workflow")
    assert [d.version for d in versions] == ["2.0", "1.0"]
    assert client.get_workflow("sdk_test_workflow").version == "2.0"
    page = client.list_workflows()
    assert {d.id for d in page} >= {"sdk_test_workflow", "sdk_other"}
    assert {d.id for d in client.iter_workflows(page_size=1)} >= {"sdk_test_workflow", "sdk_other"}


def test_unknown_definition_raises_not_found(client):
    with pytest.raises(NotFoundError):
        client.get_workflow("nope")
    with pytest.raises(NotFoundError):
        client.trigger_workflow("nope")


def test_definitions_from_json_and_yaml_files(client, tmp_path):
    json_file = tmp_path / "wf.json"
    json_file.write_text(json.dumps(definition(id="from_json")))
    yaml_file = tmp_path / "wf.yaml"
    yaml_file.write_text(yaml.safe_dump_all([definition(id="from_yaml_1"), definition(id="from_yaml_2")]))
    assert [d.id for d in client.create_workflows_from_file(json_file)] == ["from_json"]
    assert [d.id for d in client.create_workflows_from_file(yaml_file)] == ["from_yaml_1", "from_yaml_2"]
    assert client.get_workflow("from_yaml_2").tasks[1].task_id == "step_2"


def test_a_broken_file_raises_value_error(client, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ValueError, match="invalid JSON"):
        client.create_workflows_from_file(bad)


def test_trigger_by_capability_then_get_and_list_the_session(client, stored):
    started = client.trigger_workflow("sdk_test_workflow", initial_payload={"text": "hello"})
    assert isinstance(started, SessionStarted)
    assert started.workflow_id == "sdk_test_workflow"
    assert started.session_id

    session = client.get_session(started.session_id)
    assert isinstance(session, Session)
    assert session.session_id == started.session_id
    assert session.initial_payload == {"text": "hello"}
    assert session.status in {"pending", "running"}
    assert session.created_at.tzinfo is not None

    assert started.session_id in {s.session_id for s in client.list_sessions()}
    assert started.session_id in {s.session_id for s in client.iter_sessions(workflow="sdk_test_workflow")}
    assert started.session_id not in {s.session_id for s in client.list_sessions(status="completed")}


def test_trigger_for_an_agent(client, stored):
    started = client.trigger_workflow("sdk_test_workflow", agent_id="sdk-summariser")
    assert client.get_session(started.session_id).agent_id == "sdk-summariser"
    assert started.session_id in {s.session_id for s in client.list_sessions(agent="sdk-summariser")}


def test_trigger_for_an_unknown_agent_raises_not_found(client, stored):
    with pytest.raises(NotFoundError):
        client.trigger_agent_workflow("ghost", workflow_id="sdk_test_workflow")


def test_the_same_idempotency_key_returns_the_same_session(client, stored):
    first = client.trigger_workflow("sdk_test_workflow", idempotency_key="sdk-key-1")
    second = client.trigger_workflow("sdk_test_workflow", idempotency_key="sdk-key-1")
    third = client.trigger_workflow("sdk_test_workflow")
    assert first.session_id == second.session_id
    assert third.session_id != first.session_id


def test_trigger_agent_workflow_with_a_stored_or_inline_definition(client, stored):
    by_id = client.trigger_agent_workflow("sdk-summariser", workflow_id="sdk_test_workflow", initial_payload={"a": 1})
    assert by_id.workflow_id == "sdk_test_workflow"
    inline = client.trigger_agent_workflow("sdk-summariser", definition=definition(id="sdk_inline"))
    assert inline.workflow_id == "sdk_inline"
    with pytest.raises(ValueError):
        client.trigger_agent_workflow("sdk-summariser")


def test_cancel_ends_the_session_and_wait_for_session_returns_it(client, stored):
    started = client.trigger_workflow("sdk_test_workflow")
    cancelled = client.cancel_session(started.session_id)
    assert cancelled.status == "cancelled"
    final = client.wait_for_session(started.session_id, timeout=10, poll_interval=0.1)
    assert final.status == "cancelled" and final.is_finished
    assert final.ended_at is not None
    with pytest.raises(ConflictError):
        client.cancel_session(started.session_id)


def test_retry_of_a_session_that_did_not_fail_raises_conflict(client, stored):
    started = client.trigger_workflow("sdk_test_workflow")
    with pytest.raises(ConflictError):
        client.retry_session(started.session_id)


def test_wait_for_a_session_that_does_not_end_times_out(client, stored):
    started = client.trigger_workflow("sdk_test_workflow")
    with pytest.raises(SessionWaitTimeout) as info:
        client.wait_for_session(started.session_id, timeout=0.3, poll_interval=0.1)
    assert info.value.session.session_id == started.session_id
    client.cancel_session(started.session_id)


def test_unknown_session_raises_not_found(client):
    for call in (client.get_session, client.cancel_session, client.retry_session):
        with pytest.raises(NotFoundError):
            call("00000000-0000-0000-0000-000000000000")


def test_a_bad_session_filter_raises_validation_error(client):
    with pytest.raises(ValidationError):
        client.list_sessions(status="sleeping")
