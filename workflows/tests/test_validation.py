import json
from pathlib import Path

import pytest
import yaml

from workflows.validation import DefinitionInvalid, validate_definition

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def errors_of(data) -> dict[str, list[str]]:
    with pytest.raises(DefinitionInvalid) as caught:
        validate_definition(data)
    return caught.value.errors


def task(task_id, **extra):
    return {"taskId": task_id, "agentCapability": "cap", **extra}


def test_the_samples_are_valid():
    linear = validate_definition(json.loads((SAMPLES / "sample_workflow.json").read_text()))
    assert [t["agentCapability"] for t in linear["tasks"]] == ["summarise", "translate", "classify"]
    dag = validate_definition(yaml.safe_load((SAMPLES / "sample_dag.yaml").read_text()))
    assert dag["id"] == "sample_dag"


def test_an_unknown_next_task_is_named_by_its_path():
    errors = errors_of({"id": "w", "tasks": [task("a", nextTaskId="b"), task("c", nextTaskId="nope")]})
    assert "tasks[0].nextTaskId" in errors
    assert "Unknown task id 'nope'." in errors["tasks[1].nextTaskId"]


def test_duplicate_task_ids_are_rejected():
    errors = errors_of({"id": "w", "tasks": [task("a"), task("a")]})
    assert errors["tasks[1].taskId"] == ["Duplicate task id 'a' (also tasks[0])."]


def test_a_cycle_is_rejected_with_its_path():
    errors = errors_of(
        {"id": "w", "tasks": [task("start"), task("a", dependsOn=["start", "b"]), task("b", dependsOn=["a"])]}
    )
    (path, messages), *_ = errors.items()
    assert "Cycle" in messages[0] and "a" in messages[0] and "b" in messages[0]
    assert path in {"tasks[1]", "tasks[2]"}


def test_a_self_reference_is_a_cycle():
    assert "tasks[0].nextTaskId" in errors_of({"id": "w", "tasks": [task("a", nextTaskId="a")]})


def test_dangling_depends_on_and_fallback_are_rejected():
    errors = errors_of({"id": "w", "tasks": [task("a", fallbackTaskId="zz"), task("b", dependsOn=["a", "x"])]})
    assert "tasks[0].fallbackTaskId" in errors
    assert "tasks[1].dependsOn[1]" in errors


def test_a_definition_without_a_start_task_is_rejected():
    errors = errors_of({"id": "w", "tasks": [task("a", dependsOn=["b"]), task("b", dependsOn=["a"])]})
    assert any("Cycle" in m for msgs in errors.values() for m in msgs)
    # every task is only a fallback: nothing can start
    errors = errors_of({"id": "w", "tasks": [task("a", fallbackTaskId="b"), task("b", fallbackTaskId="a")]})
    assert "No start task" in errors["tasks"][0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("maxRetries", -1, "Must be between"),
        ("maxRetries", 1.5, "Must be an integer."),
        ("priority", True, "Must be an integer."),
        ("timeoutSeconds", "10", "Must be a number."),
        ("timeoutSeconds", 0, "Must be between"),
        ("retryBackoffSeconds", -2, "Must be between"),
    ],
)
def test_bad_policy_values_are_rejected(field, value, message):
    errors = errors_of({"id": "w", "tasks": [task("a", **{field: value})]})
    assert message in errors[f"tasks[0].{field}"][0]


def test_bad_defaults_are_rejected():
    errors = errors_of({"id": "w", "defaults": {"maxRetries": "x", "colour": 1}, "tasks": [task("a")]})
    assert set(errors) == {"defaults.maxRetries", "defaults.colour"}


def test_wrong_types_are_rejected():
    assert "tasks" in errors_of({"id": "w", "tasks": {"a": 1}})
    errors = errors_of({"id": 5, "tasks": [{"taskId": "a", "agentCapability": 3, "parameters": [1], "dependsOn": "b"}]})
    assert {"id", "tasks[0].agentCapability", "tasks[0].parameters", "tasks[0].dependsOn"} <= set(errors)
    assert errors_of([1]) == {"non_field_errors": ["A workflow definition must be a JSON object."]}
    assert "tasks[0].colour" in errors_of({"id": "w", "tasks": [task("a", colour="red")]})


def test_references_to_unknown_tasks_or_roots_are_rejected():
    errors = errors_of(
        {
            "id": "w",
            "tasks": [
                task("a", parameters={"x": "{{ tasks.nope.result }}", "y": ["{{ env.HOME }}"]}),
            ],
        }
    )
    assert "Reference to unknown task id 'nope'." in errors["tasks[0].parameters.x"]
    assert "tasks[0].parameters.y[0]" in errors


def test_a_yaml_float_version_is_read_as_text_and_defaults_fill_in():
    spec = validate_definition(yaml.safe_load("id: w\nversion: 1.0\ntasks:\n  - {taskId: a, agentCapability: c}\n"))
    assert spec["version"] == "1.0"
    assert spec["tasks"][0]["name"] == "a" and spec["tasks"][0]["parameters"] == {}


def test_a_fallback_only_task_is_not_a_start_task():
    from workflows.validation import DefinitionGraph

    spec = validate_definition({"id": "w", "tasks": [task("a", fallbackTaskId="fb"), task("fb")]})
    graph = DefinitionGraph(spec["tasks"])
    assert graph.start_tasks == ["a"]
