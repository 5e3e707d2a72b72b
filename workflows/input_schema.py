"""The JSON Schema subset of ``input`` tasks' ``inputSchema``, and the check of a submitted value against it.

Supported: ``type`` object (``properties``, ``required``; other fields are refused), string (``minLength``,
``maxLength``), number and integer (``minimum``, ``maximum``), boolean, ``enum`` (a list of strings, numbers or
booleans), plus ``title``, ``description`` and ``default`` for forms. Errors are keyed by field path so a 400 names
each bad field (``value.amount``). Pure Python.
"""

from __future__ import annotations

from typing import Any

TYPES = ("object", "string", "number", "integer", "boolean")
_KEYWORDS = {
    "object": {"type", "properties", "required", "title", "description"},
    "string": {"type", "minLength", "maxLength", "enum", "title", "description", "default"},
    "number": {"type", "minimum", "maximum", "enum", "title", "description", "default"},
    "integer": {"type", "minimum", "maximum", "enum", "title", "description", "default"},
    "boolean": {"type", "title", "description", "default"},
    None: {"enum", "title", "description", "default"},
}
MAX_DEPTH = 5


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def schema_problems(schema: Any, path: str = "inputSchema", *, depth: int = 0) -> dict[str, list[str]]:
    """Faults of a schema (empty when it is valid), keyed by field path. The top level must be an object."""
    errors: dict[str, list[str]] = {}

    def add(where: str, message: str) -> None:
        errors.setdefault(where, []).append(message)

    if not isinstance(schema, dict):
        add(path, "Must be an object (a JSON Schema).")
        return errors
    kind = schema.get("type")
    if depth == 0 and kind != "object":
        add(_join(path, "type"), "The top level must be of type 'object'.")
        return errors
    if kind is None and "enum" not in schema:
        add(_join(path, "type"), f"Give a type ({', '.join(TYPES)}) or an enum.")
        return errors
    if kind is not None and kind not in TYPES:
        add(_join(path, "type"), f"Unsupported type; use one of {', '.join(TYPES)}.")
        return errors
    for key in sorted(set(schema) - _KEYWORDS[kind]):
        add(_join(path, key), "Not supported here.")
    for key in ("title", "description"):
        if key in schema and not isinstance(schema[key], str):
            add(_join(path, key), "Must be a string.")
    if "enum" in schema:
        enum = schema["enum"]
        if (
            not isinstance(enum, list)
            or not enum
            or not all(isinstance(item, (str, int, float, bool)) for item in enum)
            or len({repr(item) for item in enum}) != len(enum)
        ):
            add(_join(path, "enum"), "Must be a non-empty list of distinct strings, numbers or booleans.")
    for low, high, integer in (("minLength", "maxLength", True), ("minimum", "maximum", False)):
        bounds = {}
        for key in (low, high):
            if key in schema:
                value = schema[key]
                valid = (
                    isinstance(value, int) and not isinstance(value, bool) and value >= 0 if integer else _number(value)
                )
                if not valid:
                    add(_join(path, key), "Must be a non-negative integer." if integer else "Must be a number.")
                else:
                    bounds[key] = value
        if len(bounds) == 2 and bounds[low] > bounds[high]:
            add(_join(path, low), f"Must not be greater than {high}.")
    if kind == "object":
        if depth >= MAX_DEPTH:
            add(path, f"Objects nest at most {MAX_DEPTH} levels deep.")
            return errors
        properties = schema.get("properties", {})
        if not isinstance(properties, dict) or not properties:
            add(_join(path, "properties"), "Must be a non-empty object of field schemas.")
            properties = {}
        for name, sub in properties.items():
            errors.update(schema_problems(sub, _join(_join(path, "properties"), name), depth=depth + 1))
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
            add(_join(path, "required"), "Must be a list of property names.")
        else:
            for name in required:
                if name not in properties:
                    add(_join(path, "required"), f"Unknown property {name!r}.")
    elif "default" in schema and not errors:
        problems = value_problems(schema, schema["default"], _join(path, "default"))
        for where, messages in problems.items():
            errors.setdefault(where, []).extend(messages)
    return errors


def value_problems(schema: dict[str, Any], value: Any, path: str = "value") -> dict[str, list[str]]:
    """Faults of a submitted value against a valid schema (empty when it conforms), keyed by field path."""
    errors: dict[str, list[str]] = {}

    def add(where: str, message: str) -> None:
        errors.setdefault(where, []).append(message)

    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            add(path, "Must be an object.")
            return errors
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value or value[name] is None:
                add(_join(path, name), "This field is required.")
        for name, sub in value.items():
            if name not in properties:
                add(_join(path, name), "Unknown field.")
            elif sub is not None:
                for where, messages in value_problems(properties[name], sub, _join(path, name)).items():
                    errors.setdefault(where, []).extend(messages)
        return errors
    if kind == "string" and not isinstance(value, str):
        add(path, "Must be a string.")
    elif kind == "number" and not _number(value):
        add(path, "Must be a number.")
    elif kind == "integer" and not (
        isinstance(value, int) and not isinstance(value, bool) or (isinstance(value, float) and value.is_integer())
    ):
        add(path, "Must be an integer.")
    elif kind == "boolean" and not isinstance(value, bool):
        add(path, "Must be true or false.")
    if errors:
        return errors
    if "enum" in schema and not any(value == item and type(value) is type(item) for item in schema["enum"]):
        if not (_number(value) and any(_number(item) and value == item for item in schema["enum"])):
            add(path, "Must be one of: " + ", ".join(str(item) for item in schema["enum"]) + ".")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            add(path, f"At most {schema['maxLength']} characters.")
        if "minLength" in schema and len(value) < schema["minLength"]:
            add(path, f"At least {schema['minLength']} characters.")
    if _number(value):
        if "minimum" in schema and value < schema["minimum"]:
            add(path, f"Must be at least {schema['minimum']:g}.")
        if "maximum" in schema and value > schema["maximum"]:
            add(path, f"Must be at most {schema['maximum']:g}.")
    return errors


def normalise_value(schema: dict[str, Any], value: Any) -> Any:
    """A conforming value with integers given as ``3.0`` stored as ``3``."""
    kind = schema.get("type")
    if kind == "object" and isinstance(value, dict):
        properties = schema.get("properties", {})
        return {name: normalise_value(properties.get(name, {}), sub) for name, sub in value.items()}
    if kind == "integer" and isinstance(value, float):
        return int(value)
    return value
