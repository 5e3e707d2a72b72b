"""Validate and normalise a workflow definition (API, admin, inline trigger and files share this one validator).

Errors are keyed by field path (``tasks[1].nextTaskId``) so a 400 names exactly what is wrong. Pure Python.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from workflows.input_schema import schema_problems, value_problems
from workflows.references import iter_references, parse_reference

POLICY_FIELDS = (
    "maxRetries",
    "retryBackoffSeconds",
    "timeoutSeconds",
    "startTimeoutSeconds",
    "queueTimeoutSeconds",
    "priority",
)
TASK_FIELDS = {
    "taskId", "name", "description", "agentCapability", "parameters", "nextTaskId", "dependsOn", "fallbackTaskId",
    *POLICY_FIELDS,
}  # fmt: skip
KINDS = ("agent", "approval", "input")
HUMAN_FIELDS = ("prompt", "options", "inputSchema", "assignees", "onTimeout", "onReject", "remindAfterSeconds")
TASK_FIELDS |= {"kind", *HUMAN_FIELDS}
# Agent-only fields a human task refuses (it is never dispatched, so these would silently do nothing).
AGENT_ONLY_FIELDS = (
    "agentCapability", "parameters", "maxRetries", "retryBackoffSeconds", "startTimeoutSeconds", "queueTimeoutSeconds",
    "fallbackTaskId",
)  # fmt: skip
DEFAULT_OPTIONS = ["approve", "reject"]
REJECT_OPTION = "reject"
TOP_FIELDS = {"id", "name", "description", "version", "defaults", "tasks", "notifyUrl"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$")
MAX_TASKS = 500

# (minimum, maximum, integer only)
_POLICY_RANGES: dict[str, tuple[float, float, bool]] = {
    "maxRetries": (0, 100, True),
    "retryBackoffSeconds": (0, 3600, False),
    "timeoutSeconds": (0.01, 7 * 86400, False),
    "startTimeoutSeconds": (0.01, 7 * 86400, False),
    "queueTimeoutSeconds": (0.01, 7 * 86400, False),
    "priority": (-1000, 1000, True),
}


class DefinitionInvalid(Exception):
    """The definition is invalid; ``errors`` maps field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class _Errors:
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_policy(policy: dict[str, Any], path: str, errors: _Errors) -> None:
    for name in POLICY_FIELDS:
        if name not in policy or policy[name] is None:
            continue
        value = policy[name]
        minimum, maximum, integer = _POLICY_RANGES[name]
        if integer and not (isinstance(value, int) and not isinstance(value, bool)):
            errors.add(f"{path}{name}", "Must be an integer.")
        elif not _is_number(value):
            errors.add(f"{path}{name}", "Must be a number.")
        elif not minimum <= value <= maximum:
            errors.add(f"{path}{name}", f"Must be between {minimum:g} and {maximum:g}.")


def _optional_text(data: dict[str, Any], key: str, path: str, errors: _Errors) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.add(path, "Must be a string.")
        return ""
    return value


def validate_definition(data: Any, *, default_id: str | None = None) -> dict[str, Any]:
    """Return the normalised definition or raise DefinitionInvalid naming every fault by field path.

    Checks types, ids, duplicate and unknown task ids, dangling ``nextTaskId``/``dependsOn``/``fallbackTaskId``
    and parameter references, cycles, the presence of a start task and policy values.
    """
    errors = _Errors()
    if not isinstance(data, dict):
        raise DefinitionInvalid({"non_field_errors": ["A workflow definition must be a JSON object."]})
    for key in sorted(set(data) - TOP_FIELDS):
        errors.add(key, "Unknown field.")

    workflow_id = data.get("id", default_id)
    if not isinstance(workflow_id, str) or not workflow_id:
        errors.add("id", "This field is required (a non-empty string).")
    elif not _ID.match(workflow_id):
        errors.add("id", "Use up to 100 letters, digits, '_', '-', '.' or ':'.")
    version = data.get("version", "1.0")
    if _is_number(version):
        version = str(version)  # YAML reads `version: 1.0` as a float
    if not isinstance(version, str) or not version or len(version) > 50:
        errors.add("version", "Must be a non-empty string of at most 50 characters.")
    name = _optional_text(data, "name", "name", errors)
    description = _optional_text(data, "description", "description", errors)

    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        errors.add("defaults", "Must be an object.")
        defaults = {}
    else:
        for key in sorted(set(defaults) - set(POLICY_FIELDS)):
            errors.add(f"defaults.{key}", "Unknown policy field.")
        _check_policy(defaults, "defaults.", errors)

    tasks_in = data.get("tasks")
    if not isinstance(tasks_in, list) or not tasks_in:
        errors.add("tasks", "Must be a non-empty list of tasks.")
        raise DefinitionInvalid(errors.errors)
    if len(tasks_in) > MAX_TASKS:
        errors.add("tasks", f"At most {MAX_TASKS} tasks.")
        raise DefinitionInvalid(errors.errors)

    tasks: list[dict[str, Any]] = []
    index_of: dict[str, int] = {}
    for i, raw in enumerate(tasks_in):
        path = f"tasks[{i}]"
        if not isinstance(raw, dict):
            errors.add(path, "Must be an object.")
            continue
        for key in sorted(set(raw) - TASK_FIELDS):
            errors.add(f"{path}.{key}", "Unknown field.")
        task_id = raw.get("taskId")
        if not isinstance(task_id, str) or not task_id:
            errors.add(f"{path}.taskId", "This field is required (a non-empty string).")
            task_id = None
        elif not _ID.match(task_id):
            errors.add(f"{path}.taskId", "Use up to 100 letters, digits, '_', '-', '.' or ':'.")
        elif task_id in index_of:
            errors.add(f"{path}.taskId", f"Duplicate task id {task_id!r} (also tasks[{index_of[task_id]}]).")
        else:
            index_of[task_id] = i
        kind = raw.get("kind", "agent")
        if kind not in KINDS:
            errors.add(f"{path}.kind", f"Must be one of: {', '.join(KINDS)}.")
            kind = "agent"
        capability = raw.get("agentCapability")
        # Optional: a session run for one agent sends it every task; routing by capability needs it, which
        # session start checks (``capability_problems``).
        if capability is not None and (not isinstance(capability, str) or not capability):
            errors.add(f"{path}.agentCapability", "Must be a non-empty string (or left out).")
            capability = None
        parameters = raw.get("parameters")
        if parameters is None:
            parameters = {}
        elif not isinstance(parameters, dict):
            errors.add(f"{path}.parameters", "Must be an object.")
            parameters = {}
        next_id = raw.get("nextTaskId")
        if next_id is not None and (not isinstance(next_id, str) or not next_id):
            errors.add(f"{path}.nextTaskId", "Must be a task id or null.")
            next_id = None
        depends_on = raw.get("dependsOn")
        if depends_on is None:
            depends_on = []
        elif not isinstance(depends_on, list) or not all(isinstance(d, str) and d for d in depends_on):
            errors.add(f"{path}.dependsOn", "Must be a list of task ids.")
            depends_on = []
        elif len(set(depends_on)) != len(depends_on):
            errors.add(f"{path}.dependsOn", "Lists a task id twice.")
        fallback = raw.get("fallbackTaskId")
        if fallback is not None and (not isinstance(fallback, str) or not fallback):
            errors.add(f"{path}.fallbackTaskId", "Must be a task id or null.")
            fallback = None
        _check_policy(raw, f"{path}.", errors)
        task = {
            "taskId": task_id,
            "name": _optional_text(raw, "name", f"{path}.name", errors) or (task_id or ""),
            "agentCapability": capability,
            "parameters": parameters,
            "nextTaskId": next_id,
            "dependsOn": list(depends_on),
            "fallbackTaskId": fallback,
        }
        if raw.get("description") is not None:
            task["description"] = _optional_text(raw, "description", f"{path}.description", errors)
        for name_ in POLICY_FIELDS:
            if raw.get(name_) is not None:
                task[name_] = raw[name_]
        if kind == "agent":
            for name_ in HUMAN_FIELDS:
                if raw.get(name_) is not None:
                    errors.add(f"{path}.{name_}", "Only for approval and input tasks (kind).")
        else:
            for name_ in AGENT_ONLY_FIELDS:
                if raw.get(name_) not in (None, {}):
                    errors.add(f"{path}.{name_}", f"Only for agent tasks; a {kind} task is answered by a person.")
            task.update(_human_task(raw, kind, path, errors))
        tasks.append(task)

    if errors.errors:
        raise DefinitionInvalid(errors.errors)

    # References between tasks.
    for i, task in enumerate(tasks):
        path = f"tasks[{i}]"
        if task["nextTaskId"] is not None:
            if task["nextTaskId"] not in index_of:
                errors.add(f"{path}.nextTaskId", f"Unknown task id {task['nextTaskId']!r}.")
            elif task["nextTaskId"] == task["taskId"]:
                errors.add(f"{path}.nextTaskId", "A task cannot follow itself (cycle).")
        for k, dep in enumerate(task["dependsOn"]):
            if dep not in index_of:
                errors.add(f"{path}.dependsOn[{k}]", f"Unknown task id {dep!r}.")
            elif dep == task["taskId"]:
                errors.add(f"{path}.dependsOn[{k}]", "A task cannot depend on itself (cycle).")
        if task["fallbackTaskId"] is not None:
            if task["fallbackTaskId"] not in index_of:
                errors.add(f"{path}.fallbackTaskId", f"Unknown task id {task['fallbackTaskId']!r}.")
            elif task["fallbackTaskId"] == task["taskId"]:
                errors.add(f"{path}.fallbackTaskId", "A task cannot be its own fallback.")
        if task.get("onReject") is not None:
            if task["onReject"] not in index_of:
                errors.add(f"{path}.onReject", f"Unknown task id {task['onReject']!r}.")
            elif task["onReject"] == task["taskId"]:
                errors.add(f"{path}.onReject", "A task cannot route its own rejection to itself.")
        references = [(f"{path}.parameters", ref) for ref in iter_references(task["parameters"])]
        references += [(f"{path}.prompt", ref) for ref in iter_references(task.get("prompt", ""))]
        for base, (param_path, expression) in references:
            where = f"{base}.{param_path}" if param_path else base
            try:
                parts = parse_reference(expression)
            except ValueError as exc:
                errors.add(where, str(exc))
                continue
            if parts[0] == "tasks" and parts[1] not in index_of:
                errors.add(where, f"Reference to unknown task id {parts[1]!r}.")
    if errors.errors:
        raise DefinitionInvalid(errors.errors)

    graph = DefinitionGraph(tasks)
    cycle = graph.find_cycle()
    if cycle:
        first = index_of[cycle[0]]
        errors.add(f"tasks[{first}]", "Cycle: " + " → ".join(cycle) + ".")
    elif not graph.start_tasks:
        errors.add("tasks", "No start task: every task depends on another task (or is only a fallback).")
    if errors.errors:
        raise DefinitionInvalid(errors.errors)

    spec = {
        "id": workflow_id,
        "name": name or workflow_id,
        "description": description,
        "version": version,
        "defaults": {k: defaults[k] for k in POLICY_FIELDS if defaults.get(k) is not None},
        "tasks": tasks,
    }
    notify_url = data.get("notifyUrl")
    if notify_url not in (None, ""):
        if not isinstance(notify_url, str) or not re.match(r"^https?://[^\s]+$", notify_url) or len(notify_url) > 2048:
            raise DefinitionInvalid({"notifyUrl": ["Must be an http(s) URL of at most 2048 characters."]})
        spec["notifyUrl"] = notify_url  # only when set: definitions stored before keep their content hash
    return spec


def _human_task(raw: dict[str, Any], kind: str, path: str, errors: _Errors) -> dict[str, Any]:
    """The normalised fields of an approval or input task (``kind`` and the human-task fields)."""
    fields: dict[str, Any] = {"kind": kind}
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        errors.add(f"{path}.prompt", "This field is required (a non-empty string).")
    else:
        fields["prompt"] = prompt
    assignees = raw.get("assignees")
    if assignees is None:
        assignees = []
    if not isinstance(assignees, list) or not all(isinstance(a, str) and a and len(a) <= 150 for a in assignees):
        errors.add(f"{path}.assignees", "Must be a list of user or group names.")
        assignees = []
    fields["assignees"] = list(assignees)
    if kind == "approval":
        options = raw.get("options")
        if options is None:
            options = list(DEFAULT_OPTIONS)
        if (
            not isinstance(options, list)
            or len(options) < 2
            or not all(isinstance(o, str) and _ID.match(o) for o in options)
            or len(set(options)) != len(options)
        ):
            errors.add(
                f"{path}.options", "Must be a list of at least two distinct option names (letters, digits, _-.:)."
            )
            options = list(DEFAULT_OPTIONS)
        fields["options"] = options
        if raw.get("inputSchema") is not None:
            errors.add(f"{path}.inputSchema", "Only for input tasks.")
        if raw.get("onReject") is not None:
            if not isinstance(raw["onReject"], str) or not raw["onReject"]:
                errors.add(f"{path}.onReject", "Must be a task id.")
            else:
                fields["onReject"] = raw["onReject"]
    else:
        for name_ in ("options", "onReject"):
            if raw.get(name_) is not None:
                errors.add(f"{path}.{name_}", "Only for approval tasks.")
        schema = raw.get("inputSchema")
        if schema is None:
            errors.add(f"{path}.inputSchema", "This field is required for an input task.")
        else:
            problems = schema_problems(schema, f"{path}.inputSchema")
            for where, messages in problems.items():
                for message in messages:
                    errors.add(where, message)
            if not problems:
                fields["inputSchema"] = schema
    on_timeout = raw.get("onTimeout")
    if on_timeout is not None:
        allowed = ("fail", "approve", "reject") if kind == "approval" else ("fail",)
        if isinstance(on_timeout, str):
            if on_timeout not in allowed:
                hint = (
                    "'fail', 'approve' or 'reject'" if kind == "approval" else "'fail' or a default value (an object)"
                )
                errors.add(f"{path}.onTimeout", f"Must be {hint}.")
        elif kind == "input" and isinstance(on_timeout, dict):
            if "inputSchema" in fields:
                for where, messages in value_problems(fields["inputSchema"], on_timeout, f"{path}.onTimeout").items():
                    for message in messages:
                        errors.add(where, message)
        else:
            errors.add(f"{path}.onTimeout", "Must be 'fail', 'approve' or 'reject'." if kind == "approval" else
                       "Must be 'fail' or a default value (an object matching inputSchema).")  # fmt: skip
        fields["onTimeout"] = on_timeout
        if raw.get("timeoutSeconds") is None:
            errors.add(f"{path}.onTimeout", "Needs timeoutSeconds.")
    remind = raw.get("remindAfterSeconds")
    if remind is not None:
        if not _is_number(remind) or not 1 <= remind <= 30 * 86400:
            errors.add(f"{path}.remindAfterSeconds", "Must be a number between 1 and 2592000.")
        else:
            fields["remindAfterSeconds"] = remind
    return fields


def capability_problems(spec: dict[str, Any]) -> dict[str, list[str]]:
    """Agent tasks without ``agentCapability``: fine when a session runs for one agent, refused when tasks are
    routed by capability (a workflow run with no agent, a schedule with no agent)."""
    return {
        f"tasks[{i}].agentCapability": [
            "Required when the workflow runs without an agent: tasks are routed by capability."
        ]
        for i, task in enumerate(spec["tasks"])
        if task.get("kind", "agent") == "agent" and not task.get("agentCapability")
    }


def content_hash(spec: dict[str, Any]) -> str:
    """Stable hash of a normalised definition: the same content always gives the same hash."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class DefinitionGraph:
    """The dependency structure of a (normalised) definition: who depends on whom, where it starts."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = {t["taskId"]: t for t in tasks}
        self.order = [t["taskId"] for t in tasks]
        self.deps: dict[str, set[str]] = {t["taskId"]: set(t.get("dependsOn") or []) for t in tasks}
        for t in tasks:
            if t.get("nextTaskId"):
                self.deps[t["nextTaskId"]].add(t["taskId"])
        fallback_targets = {t["fallbackTaskId"] for t in tasks if t.get("fallbackTaskId")}
        fallback_targets |= {t["onReject"] for t in tasks if t.get("onReject")}
        dependants = {d for deps in self.deps.values() for d in deps}
        # A task named only as a fallback or an approval's onReject (nothing leads to it) runs only when its task's
        # retries are exhausted, or when a person rejects.
        self.fallback_only = {tid for tid in fallback_targets if not self.deps[tid]}
        self.start_tasks = [tid for tid in self.order if not self.deps[tid] and tid not in self.fallback_only]
        self.dependants = dependants

    def find_cycle(self) -> list[str] | None:
        white, grey, black = 0, 1, 2
        colour = dict.fromkeys(self.order, white)
        stack: list[str] = []

        def visit(node: str) -> list[str] | None:
            colour[node] = grey
            stack.append(node)
            for dep in sorted(self.deps[node]):
                if colour[dep] == grey:
                    return [*stack[stack.index(dep) :], dep]
                if colour[dep] == white:
                    found = visit(dep)
                    if found:
                        return found
            stack.pop()
            colour[node] = black
            return None

        for node in self.order:
            if colour[node] == white:
                found = visit(node)
                if found:
                    return list(reversed(found))
        return None

    def ready_tasks(self, done: set[str], started: set[str]) -> list[str]:
        """Tasks not yet started whose dependencies are all done (fallback-only tasks never start this way)."""
        return [
            tid for tid in self.order if tid not in started and tid not in self.fallback_only and self.deps[tid] <= done
        ]
