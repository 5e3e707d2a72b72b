"""``{{ payload.x }}`` / ``{{ tasks.step_1.result.summary }}`` references in task parameters.

A string that is exactly one reference is replaced by the referenced JSON value (types kept: a number stays a
number, an object an object). References embedded in a longer string are interpolated as text (strings as they
are, other values as compact JSON). A reference to something that does not exist resolves to ``null`` (or to an
empty string inside a longer string). Pure functions: no Django.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

REFERENCE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_WHOLE = re.compile(r"^\s*\{\{\s*([^{}]*?)\s*\}\}\s*$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]+$")
ROOTS = ("payload", "tasks")


def parse_reference(expression: str) -> list[str]:
    """Split ``tasks.step_1.result.summary`` into segments; raise ValueError on a malformed reference."""
    parts = expression.split(".") if expression else []
    if not parts or parts[0] not in ROOTS:
        raise ValueError(f"Reference {{{{ {expression} }}}} must start with 'payload' or 'tasks'.")
    if any(not _SEGMENT.match(part) for part in parts):
        raise ValueError(f"Reference {{{{ {expression} }}}} is malformed: use dotted names like tasks.step_1.result.")
    if parts[0] == "tasks" and (len(parts) < 3 or parts[2] != "result"):
        raise ValueError(f"Reference {{{{ {expression} }}}}: task references read tasks.<taskId>.result[.field…].")
    return parts


def iter_references(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(path, expression)`` for every reference inside a JSON value (for validation)."""
    if isinstance(value, str):
        for match in REFERENCE.finditer(value):
            yield path, match.group(1)
    elif isinstance(value, dict):
        for key, sub in value.items():
            yield from iter_references(sub, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from iter_references(sub, f"{path}[{index}]")


def _lookup(parts: list[str], context: dict[str, Any]) -> Any:
    current: Any = context
    for part in parts:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def text_of(value: Any) -> str:
    """A resolved value as text (prompts): strings as they are, other values as compact JSON."""
    return _text(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def resolve(value: Any, context: dict[str, Any]) -> Any:
    """Return ``value`` with every reference replaced using ``context`` = {"payload": …, "tasks": {id: {"result"}}}."""
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole and REFERENCE.search(value).group(0) == value.strip():
            try:
                return _lookup(parse_reference(whole.group(1)), context)
            except ValueError:
                return value
        return REFERENCE.sub(lambda m: _resolve_embedded(m, context), value)
    if isinstance(value, dict):
        return {key: resolve(sub, context) for key, sub in value.items()}
    if isinstance(value, list):
        return [resolve(sub, context) for sub in value]
    return value


def _resolve_embedded(match: re.Match, context: dict[str, Any]) -> str:
    try:
        return _text(_lookup(parse_reference(match.group(1)), context))
    except ValueError:
        return match.group(0)
