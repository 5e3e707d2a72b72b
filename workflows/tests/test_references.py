from workflows.references import resolve

CONTEXT = {
    "payload": {"text": "hello", "n": 3, "items": [1, 2]},
    "tasks": {"step_1": {"result": {"summary": "short", "score": 0.5, "tags": ["a"]}}},
}


def test_a_whole_string_reference_keeps_the_json_type():
    assert resolve("{{ payload.n }}", CONTEXT) == 3
    assert resolve("{{tasks.step_1.result.tags}}", CONTEXT) == ["a"]
    assert resolve("{{ tasks.step_1.result }}", CONTEXT) == {"summary": "short", "score": 0.5, "tags": ["a"]}


def test_embedded_references_are_interpolated_as_text():
    assert resolve("Summary: {{ tasks.step_1.result.summary }} ({{ payload.n }})", CONTEXT) == "Summary: short (3)"
    assert resolve("items={{ payload.items }}", CONTEXT) == "items=[1,2]"


def test_references_resolve_inside_nested_parameters():
    params = {"a": {"b": ["{{ payload.text }}", 1]}, "c": "{{ payload.items.1 }}"}
    assert resolve(params, CONTEXT) == {"a": {"b": ["hello", 1]}, "c": 2}


def test_a_missing_reference_is_null_or_empty_text():
    assert resolve("{{ tasks.other.result.x }}", CONTEXT) is None
    assert resolve("x={{ payload.missing }}", CONTEXT) == "x="


def test_strings_without_references_are_untouched():
    assert resolve("plain {not a ref}", CONTEXT) == "plain {not a ref}"
    assert resolve(42, CONTEXT) == 42
