"""Human tasks (``approval`` and ``input``): a person's answer, the timeout's ``onTimeout``, reminders, webhooks.

A human run is created ``waiting_for_input`` (``planning``), is never dispatched and holds no agent. It ends when
someone allowed answers it (``human_task_answer``, from the API, the dashboard, the admin, the SDK or the CLI) or
when its deadline passes (``on_timeout``, called by the engine's deadline pass). The answer is written once, by
compare-and-swap on the waiting status under the session's lock, and kept as the audit: who, when, from which
interface, with what value.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from opscore_project.errors import ApiError, Conflict, NotFound, ValidationFailed
from opscore_project.lib.signing import sign
from opscore_project.observability import events
from opscore_project.observability.oplog import log_operation
from workflows import selectors
from workflows.callback_safety import post_callback
from workflows.engine.reports import engine_wake
from workflows.engine.transitions import Transitions
from workflows.input_schema import normalise_value, value_problems
from workflows.models import TaskKind, TaskRun, TaskRunStatus
from workflows.validation import REJECT_OPTION

logger = logging.getLogger(__name__)

INTERFACES = ("api", "sdk", "cli", "dashboard", "admin")
TIMEOUT_ACTOR = "timeout"
MAX_COMMENT = 4000


@dataclass(frozen=True)
class Actor:
    """Who answers: a user name (or a token's name) and the Django groups it belongs to."""

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)

    def may_answer(self, run: TaskRun) -> bool:
        assignees = set(run.assignees or [])
        return not assignees or self.name in assignees or bool(self.groups & assignees)


def actor_for(user: Any) -> Actor:
    """The actor behind a request's user: a staff user, or an API token (its owner's name when it has one)."""
    from django.contrib.auth import get_user_model

    owner = getattr(user, "owner", None)
    if owner is not None:  # an API token
        name = owner or user.username
        if not owner:
            return Actor(name)
        groups = get_user_model().objects.filter(username=owner).values_list("groups__name", flat=True)
        return Actor(name, frozenset(g for g in groups if g))
    return Actor(user.get_username(), frozenset(user.groups.values_list("name", flat=True)))


class Forbidden(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="permission_denied", status_code=403)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _approval_result(option: str, comment: str, by: str) -> dict[str, Any]:
    return {"approved": option != REJECT_OPTION, "option": option, "comment": comment, "by": by}


def _parse_answer(task: dict[str, Any], body: Any, by: str) -> tuple[Any, Any, bool]:
    """(stored answer, result, rejected) from a request body, or ValidationFailed naming each bad field."""
    if not isinstance(body, dict):
        raise ValidationFailed({"non_field_errors": ["The body must be a JSON object."]})
    if task["kind"] == TaskKind.APPROVAL:
        unknown = sorted(set(body) - {"option", "comment"})
        errors = {name: ["Unknown field."] for name in unknown}
        option, comment = body.get("option"), body.get("comment", "")
        if option not in task["options"]:
            errors["option"] = [f"Must be one of: {', '.join(task['options'])}."]
        if comment is None:
            comment = ""
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            errors["comment"] = [f"Must be a string of at most {MAX_COMMENT} characters."]
        if errors:
            raise ValidationFailed(errors)
        return {"option": option, "comment": comment}, _approval_result(option, comment, by), option == REJECT_OPTION
    unknown = sorted(set(body) - {"value"})
    errors = {name: ["Unknown field."] for name in unknown}
    if "value" not in body:
        errors["value"] = ["This field is required (an object matching the task's inputSchema)."]
    else:
        errors.update(value_problems(task["inputSchema"], body["value"]))
    if errors:
        raise ValidationFailed(errors, message="The input does not match the task's inputSchema.")
    value = normalise_value(task["inputSchema"], body["value"])
    return {"value": value}, value, False


def answer_problems(run: TaskRun, body: Any) -> dict[str, list[str]]:
    """What is wrong with an answer to ``run`` (empty when it would be accepted as it stands): for forms."""
    try:
        _parse_answer(selectors.definition_of(run.session).task(run.task_id), body, "")
    except ValidationFailed as exc:
        return exc.errors or {}
    return {}


def human_task_answer(
    *,
    session_id: uuid.UUID | str,
    task_id: str,
    actor: Actor,
    body: Any,
    interface: str = "api",
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> tuple[TaskRun, bool]:
    """Answer a waiting approval or input task; the session goes on with the answer as the task's result.

    Returns (run, answered_now): the same ``idempotency_key`` from the same actor again returns the stored answer
    with ``answered_now`` False. Raises NotFound (no such session or task), Forbidden (the actor is not among the
    assignees), Conflict (already answered, naming who answered first, or not waiting) and ValidationFailed (a bad
    option or a value that does not match the inputSchema, naming each field).
    """
    now = now or timezone.now()
    interface = interface if interface in INTERFACES else "api"
    try:
        key = uuid.UUID(str(session_id))
    except ValueError:
        raise NotFound(f"Session {session_id} does not exist.") from None
    with transaction.atomic():
        tx = Transitions(now)
        tx.load({key})  # the session's lock serialises answers to it; the status CAS below makes it explicit
        session = tx.sessions.get(key)
        if session is None:
            raise NotFound(f"Session {session_id} does not exist.")
        runs = [run for run in tx.runs[key] if run.task_id == task_id]
        if not runs or not runs[-1].is_human:
            raise NotFound(f"Session {session_id} has no approval or input task {task_id!r}.")
        waiting = [run for run in runs if run.status == TaskRunStatus.WAITING_FOR_INPUT]
        run = waiting[-1] if waiting else runs[-1]
        if not actor.may_answer(run):
            raise Forbidden(
                f"Task {task_id} is assigned to {', '.join(run.assignees)}; {actor.name} is not among them."
            )
        if run.status != TaskRunStatus.WAITING_FOR_INPUT:
            answered = next((r for r in reversed(runs) if r.answered_at is not None), None)
            if answered is not None:
                if idempotency_key and answered.answer_key == idempotency_key and answered.answered_by == actor.name:
                    return answered, False
                raise Conflict(
                    f"Task {task_id} was already answered by {answered.answered_by} at {_iso(answered.answered_at)} "
                    f"(via {answered.answered_via}).",
                    errors={"answeredBy": [answered.answered_by]},
                )
            raise Conflict(f"Task {task_id} is not waiting for input (it is {run.status}).")
        definition = selectors.definition_of(session)
        answer, result, rejected = _parse_answer(definition.task(task_id), body, actor.name)
        _record_answer(tx, run, answer=answer, by=actor.name, via=interface, key=idempotency_key or "")
        _finish(tx, run, result, rejected=rejected, by=actor.name)
        tx.write()
        engine_wake()
    return run, True


def _record_answer(tx: Transitions, run: TaskRun, *, answer: Any, by: str, via: str, key: str = "") -> None:
    """Write the audit fields once: compare-and-swap on the waiting status (0 rows: someone answered first)."""
    fields = {"answer": answer, "answered_by": by, "answered_at": tx.now, "answered_via": via, "answer_key": key}
    updated = TaskRun.objects.filter(
        pk=run.pk, status=TaskRunStatus.WAITING_FOR_INPUT, answered_at__isnull=True
    ).update(**fields)
    if updated != 1:
        raise Conflict(f"Task {run.task_id} was answered meanwhile.")
    for name, value in fields.items():
        setattr(run, name, value)


def _finish(tx: Transitions, run: TaskRun, result: Any, *, rejected: bool, by: str) -> None:
    context = {"taskId": run.task_id, "kind": run.kind, "by": by, "via": run.answered_via}
    if run.kind == TaskKind.APPROVAL:
        context.update(approved=result["approved"], option=result["option"])
    tx.events.add(
        events.TASK_INPUT_RECEIVED,
        context,
        message=f"Task {run.task_id} answered by {by}"
        + (f": {result['option']}" if run.kind == TaskKind.APPROVAL else ""),
        session_id=run.session_id,
        task_id=run.pk,
    )
    tx.notify(run, events.TASK_INPUT_RECEIVED)
    error = ""
    if rejected:
        comment = f": {result['comment']}" if result.get("comment") else ""
        error = f"Task {run.task_id} rejected by {by}{comment}"
    tx.answer(run, result, rejected=rejected, error=error)


def on_timeout(tx: Transitions, run: TaskRun) -> None:
    """Nobody answered in time: ``onTimeout`` decides (fail, approve, reject, or the input's default value)."""
    task = selectors.definition_of(tx.session_of(run)).task(run.task_id)
    action = task.get("onTimeout", "fail")
    waited = (run.timeout_at - run.created_at).total_seconds() if run.timeout_at else 0
    tx.notify(run, events.TASK_TIMED_OUT)
    if action == "fail":
        tx.fail(run, TaskRunStatus.TIMED_OUT, f"Timed out: nobody answered within {waited:g}s.")
        return
    tx.events.add(
        events.TASK_TIMED_OUT,
        {"taskId": run.task_id, "attempt": run.attempt, "onTimeout": action if isinstance(action, str) else "default"},
        level="warning",
        message=f"Task {run.task_id}: nobody answered within {waited:g}s; onTimeout applied",
        session_id=run.session_id,
        task_id=run.pk,
    )
    if run.kind == TaskKind.APPROVAL:
        option = REJECT_OPTION if action == "reject" else "approve"
        answer, result = {"option": option, "comment": ""}, _approval_result(option, "", TIMEOUT_ACTOR)
        rejected = option == REJECT_OPTION
    else:
        answer, result, rejected = {"value": action}, action, False
    _record_answer(tx, run, answer=answer, by=TIMEOUT_ACTOR, via=TIMEOUT_ACTOR)
    error = f"Task {run.task_id} rejected on timeout (onTimeout: reject)" if rejected else ""
    tx.answer(run, result, rejected=rejected, error=error)


def remind(tx: Transitions, run: TaskRun) -> None:
    """Still waiting after ``remindAfterSeconds``: an event and a webhook, once."""
    tx.change(run, remind_at=None)
    tx.events.add(
        events.TASK_REMINDER,
        {"taskId": run.task_id, "assignees": run.assignees or []},
        level="warning",
        message=f"Task {run.task_id} still waiting for input: {run.prompt}",
        session_id=run.session_id,
        task_id=run.pk,
    )
    tx.notify(run, events.TASK_REMINDER)


def human_task_as_dict(run: TaskRun, definition_task: dict[str, Any] | None = None) -> dict[str, Any]:
    """A human task as the inbox, the webhooks and the answer endpoint show it."""
    task = definition_task or {}
    return {
        "sessionId": str(run.session_id),
        "taskId": run.task_id,
        "taskRunId": str(run.pk),
        "workflowId": run.session.workflow_id if run.session_id else None,
        "kind": run.kind,
        "status": run.status,
        "prompt": run.prompt,
        "options": task.get("options") if run.kind == TaskKind.APPROVAL else None,
        "inputSchema": task.get("inputSchema") if run.kind == TaskKind.INPUT else None,
        "assignees": run.assignees or [],
        "waitingSince": _iso(run.created_at),
        "timeoutAt": _iso(run.timeout_at) if run.status == TaskRunStatus.WAITING_FOR_INPUT else None,
        "onTimeout": task.get("onTimeout", "fail") if run.timeout_at else None,
        "answer": run.answer,
        "answeredBy": run.answered_by or None,
        "answeredAt": _iso(run.answered_at),
        "answeredVia": run.answered_via or None,
        "result": run.result,
    }


def human_notice_deliver(*, run_id: str, event: str, urls: list[str] | None = None, final: bool = True) -> list[str]:
    """POST a human-task event, signed like completion callbacks, to the session's callbackUrl and the workflow's
    notifyUrl (or only to ``urls``, when retrying). Returns the URLs that failed; on the ``final`` attempt each
    failure is logged as ``callback.failed``."""
    run = TaskRun.objects.select_related("session", "session__definition").filter(pk=run_id).first()
    if run is None:
        return []
    session = run.session
    definition = selectors.definition_of(session)
    targets = [url for url in (session.callback_url, definition.spec.get("notifyUrl")) if url]
    if urls is not None:
        targets = [url for url in targets if url in urls]
    if not targets:
        return []
    body = json.dumps(
        {
            "event": event,
            "session": selectors.session_summary(session),
            "task": human_task_as_dict(run, definition.task(run.task_id)),
        },
        separators=(",", ":"),
    ).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-OpsCore-Timestamp": timestamp, "User-Agent": "Ops-Core"}
    secret = settings.OPSCORE_CALLBACK_SECRET or settings.OPSCORE_WEBHOOK_SECRET
    if secret:
        headers["X-OpsCore-Signature"] = sign(secret, timestamp, body)
    failed = []
    for url in dict.fromkeys(targets):
        result = post_callback(url, body=body, headers=headers, timeout=settings.OPSCORE_CALLBACK_TIMEOUT_SECONDS)
        if result.error:
            failed.append(url)
            if final:
                log_operation(
                    events.CALLBACK_FAILED,
                    {"url": url, "event": event, "error": result.error},
                    level="warning",
                    message=f"Human-task notice {event} not delivered: {result.error}",
                    session_id=str(session.pk),
                    task_id=str(run.pk),
                )
    return failed
