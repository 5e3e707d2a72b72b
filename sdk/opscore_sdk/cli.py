"""``opscore``: the command-line interface to Ops-Core (argparse, no extra dependencies).

Run ``opscore --help``; the reference with exit codes is docs/sdk.md and docs/cli.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from opscore_sdk._version import __version__
from opscore_sdk.client import AGENT_STATES, OpsCoreClient
from opscore_sdk.exceptions import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    OpsCoreConnectionError,
    OpsCoreError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    SessionWaitTimeout,
    ValidationError,
)
from opscore_sdk.formatting import (
    TASK_HEADERS,
    ProgressDisplay,
    Style,
    fmt_age,
    fmt_duration,
    fmt_time,
    fmt_value,
    key_values,
    session_elapsed_ms,
    session_summary_line,
    supports_color,
    table,
    task_rows,
    truncate,
)
from opscore_sdk.models import Agent, DispatchStatus, Event, HumanTask, Session, WorkflowControl

EXIT_OK = 0
EXIT_FAILED = 1  # the session ended failed/cancelled, or an error with no code of its own
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_SERVER = 5
EXIT_CONNECTION = 6
EXIT_VALIDATION = 7
EXIT_CONFLICT = 8
EXIT_RATE_LIMITED = 9
EXIT_WAIT_TIMEOUT = 10
EXIT_INTERRUPTED = 130

_EXIT_BY_ERROR: list[tuple[type[OpsCoreError], int]] = [
    (AuthenticationError, EXIT_AUTH),
    (PermissionDeniedError, EXIT_AUTH),
    (NotFoundError, EXIT_NOT_FOUND),
    (ValidationError, EXIT_VALIDATION),
    (ConflictError, EXIT_CONFLICT),
    (RateLimitedError, EXIT_RATE_LIMITED),
    (ServerError, EXIT_SERVER),
    (OpsCoreConnectionError, EXIT_CONNECTION),  # includes timeouts
    (SessionWaitTimeout, EXIT_WAIT_TIMEOUT),
]

logger = logging.getLogger("opscore_sdk.cli")


class UsageError(Exception):
    """A bad argument value found after parsing (exit 2)."""


class Console:
    """Where output goes, and how it looks. Streams are looked up at use so test capture works."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.style = Style(supports_color(sys.stdout))

    @property
    def out(self) -> TextIO:
        return sys.stdout

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def json(self, value: Any) -> None:
        self.out.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")

    def json_line(self, value: Any) -> None:
        self.out.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
        self.out.flush()

    def error(self, message: str, *, code: str | None = None, exit_code: int = EXIT_FAILED) -> None:
        if self.as_json:
            body = {"error": {"message": message, "code": code, "exitCode": exit_code}}
            sys.stderr.write(json.dumps(body) + "\n")
        else:
            err_style = Style(supports_color(sys.stderr))
            sys.stderr.write(f"{err_style('opscore: error:', 'red', 'bold')} {message}\n")


# --- argument helpers ---------------------------------------------------------------------------------------


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc.msg} (at char {exc.pos})") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object")
    return value


def _params(items: Sequence[str]) -> dict[str, Any]:
    """``k=v`` pairs; a value that parses as JSON (numbers, true, null, [..], {..}) is used as such."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param expects key=value, got {item!r}")
        try:
            result[key] = json.loads(raw)
        except json.JSONDecodeError:
            result[key] = raw
    return result


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: ISO-8601 (a time without offset is UTC) or a duration back from now: 30s, 10m, 2h, 1d, 1w."""
    now = now or datetime.now(timezone.utc)  # noqa: UP017
    match = _RELATIVE.match(text.strip().lower())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    candidate = text.strip()
    if candidate[-1:] in ("Z", "z"):
        candidate = candidate[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(candidate)
    except ValueError as exc:
        raise UsageError(f"--since expects ISO-8601 or a duration like 10m, 2h, 1d; got {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)  # noqa: UP017


# --- commands -------------------------------------------------------------------------------------------------


def cmd_agents_list(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    agents = []
    listed = client.iter_agents(
        state=args.state,
        capability=args.capability,
        drained=True if args.drained else None,
        quarantined=True if args.quarantined else None,
        page_size=min(args.limit, 500),
    )
    for agent in listed:
        agents.append(agent)
        if len(agents) >= args.limit:
            break
    if con.as_json:
        con.json([a.raw for a in agents])
        return EXIT_OK
    if not agents:
        con.print("No agents.")
        return EXIT_OK
    s = con.style
    rows = []
    for a in agents:
        flags = [f for f, on in (("stale", a.stale), ("busy", a.busy), ("unregistered", not a.registered)) if on]
        flags += [f for f, on in (("drained", a.drained), (_quarantine_flag(a), a.quarantined)) if on]
        rows.append(
            [
                a.agent_id,
                a.name or "-",
                s.status(a.state),
                truncate(", ".join(a.capabilities) or ("?" if not a.capabilities_known else "-"), 40),
                fmt_age(a.last_seen_at),
                s(" ".join(flags), "yellow") if flags else "",
            ]
        )
    con.print(table(["AGENT", "NAME", "STATE", "CAPABILITIES", "LAST SEEN", "FLAGS"], rows, s))
    return EXIT_OK


def cmd_agents_show(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    agent = client.get_agent(args.agent_id)
    if con.as_json:
        con.json(agent.raw)
        return EXIT_OK
    s = con.style
    con.print(
        key_values(
            [
                ("Agent", s(agent.agent_id, "bold")),
                ("Name", agent.name or "-"),
                ("Version", agent.version or "-"),
                ("State", f"{s.status(agent.state)}  since {fmt_time(agent.state_timestamp)}"),
                ("Details", fmt_value(agent.state_details, 100)),
                ("Capabilities", ", ".join(agent.capabilities) or ("unknown" if not agent.capabilities_known else "-")),
                ("Capabilities from", agent.capabilities_source or "-"),
                ("Endpoint", agent.contact_endpoint or "-"),
                ("Source", agent.source or "-"),
                ("Registered", fmt_time(agent.registered_at) if agent.registered else "no"),
                ("Last seen", f"{fmt_time(agent.last_seen_at)} ({fmt_age(agent.last_seen_at)})"),
                ("Stale / busy", f"{'yes' if agent.stale else 'no'} / {'yes' if agent.busy else 'no'}"),
                ("Drained", f"since {fmt_time(agent.drained_at)}" if agent.drained else "no"),
                ("Quarantine", _quarantine_text(agent)),
                ("Failures in a row", str(agent.consecutive_failures)),
            ],
            s,
        )
    )
    con.print()
    if agent.recent_history:
        con.print(s("Recent history", "bold"))
        rows = [[fmt_time(r.timestamp), s.status(r.state), fmt_value(r.details, 70)] for r in agent.recent_history]
        con.print(table(["REPORTED", "STATE", "DETAILS"], rows, s))
    else:
        con.print("No state history.")
    return EXIT_OK


def cmd_agents_set_state(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    details = _json_object(args.details, "--details") if args.details else {}
    accepted = client.report_state(args.agent_id, args.state, details)
    if con.as_json:
        con.json(accepted.raw)
    else:
        con.print(f"{accepted.agent_id or args.agent_id} → {con.style.status(args.state)} ({accepted.message})")
    return EXIT_OK


def _quarantine_flag(agent: Agent) -> str:
    return "trial" if agent.breaker_state == "half_open" else "quarantined"


def _quarantine_text(agent: Agent) -> str:
    if not agent.quarantined:
        return "no"
    if agent.breaker_state == "half_open":
        return "half-open: trial task in progress"
    until = f"until {fmt_time(agent.quarantined_until)}" if agent.quarantined_until else "until released"
    return f"{until}: {agent.quarantine_reason}" if agent.quarantine_reason else until


def _capabilities_text(agent: Agent) -> str:
    if not agent.capabilities_known:
        return "unknown"
    text = ", ".join(agent.capabilities) or "-"
    return f"{text} (source: {agent.capabilities_source})" if agent.capabilities_source else text


def _done(con: Console, model: Any, line: str) -> int:
    """What a command that changed something prints: the changed object with --json, else one line."""
    if con.as_json:
        con.json(model.raw)
    else:
        con.print(line)
    return EXIT_OK


def _agent_control_done(agent: Agent, con: Console, message: str) -> int:
    return _done(con, agent, f"Agent {con.style(agent.agent_id, 'bold')} {message}")


def cmd_agents_drain(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    agent = client.drain_agent(args.agent_id)
    finishing = "; its current task finishes" if agent.busy else ""
    return _agent_control_done(agent, con, f"drained: no new tasks{finishing}")


def cmd_agents_undrain(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    return _agent_control_done(client.undrain_agent(args.agent_id), con, "back in rotation")


def cmd_agents_quarantine(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    agent = client.quarantine_agent(args.agent_id, seconds=args.seconds, reason=args.reason)
    return _agent_control_done(agent, con, f"quarantined {_quarantine_text(agent)}")


def cmd_agents_release(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    return _agent_control_done(client.release_agent(args.agent_id), con, "released from quarantine")


def cmd_agents_set_capabilities(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    names = [name.strip() for name in args.capabilities.split(",") if name.strip()]
    agent = client.set_agent_capabilities(args.agent_id, names)
    return _agent_control_done(agent, con, f"capabilities: {_capabilities_text(agent)}")


def cmd_workflows_list(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    definitions = list(client.iter_workflows())
    if con.as_json:
        con.json([d.raw for d in definitions])
        return EXIT_OK
    if not definitions:
        con.print("No workflow definitions.")
        return EXIT_OK
    rows = [
        [
            d.id,
            d.version or "-",
            truncate(d.name or "-", 40),
            str(len(d.tasks)),
            truncate(", ".join(d.capabilities), 50),
        ]
        for d in definitions
    ]
    con.print(table(["ID", "VERSION", "NAME", "TASKS", "CAPABILITIES"], rows, con.style))
    return EXIT_OK


def cmd_workflows_show(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    definition = client.get_workflow(args.workflow_id, version=args.version)
    if con.as_json:
        con.json(definition.raw)
        return EXIT_OK
    s = con.style
    con.print(
        key_values(
            [
                ("Workflow", s(definition.id, "bold")),
                ("Version", definition.version or "-"),
                ("Name", definition.name or "-"),
                ("Description", truncate(definition.description or "-", 100)),
                ("Defaults", fmt_value(definition.defaults, 100)),
            ],
            s,
        )
    )
    con.print()
    rows = []
    for t in definition.tasks:
        after = ", ".join(t.depends_on) if t.depends_on else "-"
        rows.append(
            [
                t.task_id,
                truncate(t.name or "-", 30),
                t.agent_capability or "-",
                t.next_task_id or "-",
                after,
                "-" if t.max_retries is None else str(t.max_retries),
                "-" if t.timeout_seconds is None else f"{t.timeout_seconds:g}s",
                fmt_value(t.parameters, 40),
            ]
        )
    con.print(table(["TASK", "NAME", "CAPABILITY", "NEXT", "DEPENDS ON", "RETRIES", "TIMEOUT", "PARAMETERS"], rows, s))
    return EXIT_OK


def cmd_workflows_load(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    """Load every file; report each definition; exit with the first failure's code."""
    results: list[dict[str, Any]] = []
    exit_code = EXIT_OK
    for path in args.files:
        try:
            definitions = client.read_workflow_file(path)
        except (OSError, ValueError) as exc:
            message = str(exc) if isinstance(exc, ValueError) else f"{path}: {exc.strerror or exc}"
            con.error(message, code="invalid_file", exit_code=EXIT_VALIDATION)
            results.append({"file": str(path), "error": message})
            exit_code = exit_code or EXIT_VALIDATION
            continue
        for body in definitions:
            label = f"{path}: {body.get('id', '?')}"
            try:
                stored = client.create_workflow(body)
            except (ValidationError, ConflictError) as exc:
                con.error(f"{label}: {exc}", code=exc.code, exit_code=exit_for(exc))
                results.append({"file": str(path), "id": body.get("id"), "error": str(exc)})
                exit_code = exit_code or exit_for(exc)
                continue
            results.append({"file": str(path), "id": stored.id, "version": stored.version, "tasks": len(stored.tasks)})
            if not con.as_json:
                con.print(f"loaded {con.style(stored.id, 'bold')} v{stored.version} ({len(stored.tasks)} tasks)")
    if con.as_json:
        con.json(results)
    return exit_code


def cmd_run(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    payload = _json_object(args.payload, "--payload") if args.payload else {}
    payload.update(_params(args.param))
    if args.capability:
        # The run endpoint routes every task by its own agentCapability, so a capability cannot be forced onto
        # a workflow: check that the workflow really needs it and refuse early otherwise (see docs/sdk.md).
        definition = client.get_workflow(args.workflow_id, version=args.version)
        if args.capability not in definition.capabilities:
            needed = ", ".join(definition.capabilities) or "none"
            raise ValidationError(
                f"Workflow {definition.id!r} has no task needing capability {args.capability!r} "
                f"(its tasks need: {needed}).",
                errors={"capability": [f"Not used by workflow {definition.id!r}."]},
            )
    started = client.trigger_workflow(
        args.workflow_id,
        agent_id=args.agent,
        initial_payload=payload,
        version=args.version,
        idempotency_key=args.idempotency_key,
    )
    if not args.wait:
        if con.as_json:
            con.json(started.raw)
        else:
            version = f" v{started.workflow_version}" if started.workflow_version else ""
            con.print(
                f"Started session {con.style(started.session_id, 'bold')} (workflow {started.workflow_id}{version})"
            )
            con.print(con.style(f"Follow it with: opscore sessions watch {started.session_id}", "dim"))
        return EXIT_OK
    if not con.as_json:
        con.print(f"Started session {con.style(started.session_id, 'bold')}; waiting for it to end (Ctrl-C to stop)")
    return _watch(client, started.session_id, args, con)


def _watch(client: OpsCoreClient, session_id: str, args: argparse.Namespace, con: Console) -> int:
    display = None
    if not con.as_json:
        display = ProgressDisplay(con.out, con.style, live=con.out.isatty() and not args.plain)
    session = client.wait_for_session(
        session_id,
        timeout=args.timeout_wait,
        poll_interval=args.interval,
        on_update=display.update if display else None,
    )
    return _finish(session, con)


def _finish(session: Session, con: Console) -> int:
    if con.as_json:
        con.json(session.raw)
    else:
        con.print(session_summary_line(session, con.style))
        if session.error:
            con.print(f"  error: {con.style(fmt_value(session.error, 200), 'red')}")
    return EXIT_OK if session.status == "completed" else EXIT_FAILED


def cmd_sessions_list(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    since = parse_since(args.since) if args.since else None
    sessions = []
    for session in client.iter_sessions(
        status=args.status, workflow=args.workflow, agent=args.agent, since=since, page_size=min(args.limit, 500)
    ):
        sessions.append(session)
        if len(sessions) >= args.limit:
            break
    if con.as_json:
        con.json([x.raw for x in sessions])
        return EXIT_OK
    if not sessions:
        con.print("No sessions.")
        return EXIT_OK
    s = con.style
    rows = [
        [
            x.session_id,
            x.workflow_id + (f" v{x.workflow_version}" if x.workflow_version else ""),
            s.status(x.status),
            x.agent_id or "-",
            fmt_time(x.started_at or x.created_at),
            fmt_duration(session_elapsed_ms(x)),
        ]
        for x in sessions
    ]
    con.print(table(["SESSION", "WORKFLOW", "STATUS", "AGENT", "STARTED", "DURATION"], rows, s))
    return EXIT_OK


def cmd_sessions_show(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    session = client.get_session(args.session_id)
    if con.as_json:
        con.json(session.raw)
        return EXIT_OK
    s = con.style
    timings = session.timings or {}
    con.print(
        key_values(
            [
                ("Session", s(session.session_id, "bold")),
                (
                    "Workflow",
                    session.workflow_id + (f" v{session.workflow_version}" if session.workflow_version else ""),
                ),
                ("Status", s.status(session.status)),
                ("Agent", session.agent_id or "(by capability)"),
                ("Created", fmt_time(session.created_at)),
                ("Started", fmt_time(session.started_at)),
                ("Ended", fmt_time(session.ended_at)),
                (
                    "Timings",
                    f"queue {fmt_duration(timings.get('queueWaitMs'))}, run {fmt_duration(timings.get('runMs'))}, "
                    f"total {fmt_duration(timings.get('totalMs'))}",
                ),
                ("Payload", fmt_value(session.initial_payload, 100)),
                ("Error", s(fmt_value(session.error, 200), "red") if session.error else "-"),
            ],
            s,
        )
    )
    con.print()
    if session.tasks:
        con.print(table(TASK_HEADERS, task_rows(session, s), s))
    else:
        con.print("No task runs yet.")
    return EXIT_OK


def cmd_sessions_cancel(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    session = client.cancel_session(args.session_id)
    if con.as_json:
        con.json(session.raw)
    else:
        con.print(f"Session {session.session_id or args.session_id} {con.style.status(session.status)}")
    return EXIT_OK


def cmd_sessions_retry(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    session = client.retry_session(args.session_id)
    if args.wait:
        if not con.as_json:
            con.print(f"Retrying session {con.style(session.session_id, 'bold')}; waiting for it to end")
        return _watch(client, session.session_id or args.session_id, args, con)
    if con.as_json:
        con.json(session.raw)
    else:
        con.print(f"Session {session.session_id or args.session_id} {con.style.status(session.status)} (retrying)")
    return EXIT_OK


def cmd_sessions_watch(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    return _watch(client, args.session_id, args, con)


def _control_line(control: WorkflowControl, con: Console) -> str:
    s = con.style
    state = s("paused", "yellow", "bold") if control.paused else s("running", "green")
    if control.paused and control.reject_when_paused:
        state += " (rejecting new sessions)"
    limit = control.max_running_sessions if control.max_running_sessions is not None else "none"
    return (
        f"Workflow {s(control.workflow_id, 'bold')}: {state}; max running sessions {limit}; "
        f"running {control.running_sessions}, pending {control.pending_sessions}"
    )


def _print_control(control: WorkflowControl, con: Console) -> int:
    return _done(con, control, _control_line(control, con))


def cmd_workflows_pause(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    control = client.pause_workflow(args.workflow_id, reject_when_paused=args.reject, reason=args.reason or "")
    return _print_control(control, con)


def cmd_workflows_resume(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    return _print_control(client.resume_workflow(args.workflow_id), con)


def cmd_workflows_limit(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    if args.max_running is None and not args.clear:
        return _print_control(client.get_workflow_controls(args.workflow_id), con)
    if args.max_running is not None and args.max_running < 1:
        raise UsageError("--max-running must be at least 1 (use --clear to remove the limit)")
    return _print_control(client.set_workflow_limit(args.workflow_id, None if args.clear else args.max_running), con)


def _print_dispatch(status: DispatchStatus, con: Console) -> int:
    if con.as_json:
        con.json(status.raw)
        return EXIT_OK
    s = con.style
    state = s("PAUSED (maintenance mode)", "yellow", "bold") if status.paused else s("running", "green")
    pairs = [("Dispatch", state)]
    if status.paused:
        pairs += [("Since", fmt_time(status.paused_at)), ("Reason", status.reason or "-")]
    pairs += [
        ("Paused workflows", ", ".join(status.paused_workflows) or "-"),
        ("Waiting tasks", str(status.waiting_tasks)),
    ]
    con.print(key_values(pairs, s))
    rows = [[f"capability {c.capability}", f"{c.in_flight}/{c.max_in_flight}"] for c in status.capability_limits]
    rows += [
        [f"workflow {w.get('workflowId')}", f"{w.get('runningSessions')}/{w.get('maxRunningSessions')}"]
        for w in status.workflow_limits
    ]
    if rows:
        con.print()
        con.print(table(["LIMIT", "USED"], rows, s))
    return EXIT_OK


def cmd_dispatch_status(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    return _print_dispatch(client.dispatch_status(), con)


def cmd_dispatch_pause(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    return _print_dispatch(client.pause_dispatch(reason=args.reason or ""), con)


def cmd_dispatch_resume(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    return _print_dispatch(client.resume_dispatch(), con)


def cmd_dispatch_waiting(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    tasks = list(itertools.islice(client.iter_waiting_tasks(), max(0, args.limit)))
    if con.as_json:
        con.json([t.raw for t in tasks])
        return EXIT_OK
    if not tasks:
        con.print("No task is waiting.")
        return EXIT_OK
    rows = [
        [t.session_id[:8], t.workflow_id, t.task_id, t.capability, str(t.priority), t.waiting_reason] for t in tasks
    ]
    con.print(table(["SESSION", "WORKFLOW", "TASK", "CAPABILITY", "PRIORITY", "WAITING FOR"], rows, con.style))
    return EXIT_OK


def cmd_dispatch_set_limit(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    if args.max_in_flight < 1:
        raise UsageError("the limit must be at least 1 (use remove-limit to remove it)")
    limit = client.set_capability_limit(args.capability, args.max_in_flight)
    if con.as_json:
        con.json(limit.raw)
    else:
        con.print(f"Capability {con.style(limit.capability, 'bold')}: at most {limit.max_in_flight} in flight "
                  f"({limit.in_flight} now)")  # fmt: skip
    return EXIT_OK


def cmd_dispatch_remove_limit(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    client.delete_capability_limit(args.capability)
    if con.as_json:
        con.json({"capability": args.capability, "removed": True})
    else:
        con.print(f"Capability {args.capability}: limit removed")
    return EXIT_OK


def cmd_inbox(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    tasks = list(client.list_inbox(workflow=args.workflow, session=args.session, kind=args.kind, page_size=500))
    if con.as_json:
        con.json([task.raw for task in tasks])
        return EXIT_OK
    if not tasks:
        con.print("Nothing waiting for you.")
        return EXIT_OK
    rows = [
        [
            task.session_id,
            task.task_id,
            task.kind,
            truncate(task.prompt, 50),
            "/".join(task.options) if task.options else "value",
            fmt_age(task.waiting_since),
            fmt_time(task.timeout_at),
        ]
        for task in tasks
    ]
    con.print(table(["SESSION", "TASK", "KIND", "PROMPT", "ANSWER", "WAITING", "TIMEOUT"], rows, con.style))
    return EXIT_OK


def _answered(task: HumanTask, con: Console) -> int:
    answer = f"Task {task.task_id} of session {task.session_id} answered by {task.answered_by}: "
    return _done(con, task, answer + fmt_value(task.result, 100))


def cmd_approve(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    option = args.option or ("approve" if args.command == "approve" else "reject")
    task = client.submit_input(
        args.session_id, args.task_id, option=option, comment=args.comment or "", idempotency_key=args.idempotency_key,
        interface="cli",
    )  # fmt: skip
    return _answered(task, con)


def cmd_input(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    value = _json_object(args.json_value, "--json")
    task = client.submit_input(
        args.session_id, args.task_id, value, idempotency_key=args.idempotency_key, interface="cli"
    )
    return _answered(task, con)


def _event_line(event: Event, con: Console) -> str:
    s = con.style
    ids = " ".join(
        part
        for part in (
            f"agent={event.agent_id}" if event.agent_id else "",
            f"session={event.session_id}" if event.session_id else "",
            f"task={event.task_id}" if event.task_id else "",
        )
        if part
    )
    level = s.status(event.level) + " " * max(0, 7 - len(event.level or "-"))
    text = event.message or fmt_value(event.context, 100)
    return f"{s(fmt_time(event.created_at), 'dim')} {level} {s(event.event_type, 'bold')} {text}" + (
        f"  {s(ids, 'dim')}" if ids else ""
    )


def cmd_logs(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    filters = dict(agent=args.agent, session=args.session, level=args.level, type=args.type, q=args.q)
    since = parse_since(args.since) if args.since else None
    backlog = list(client.list_events(**filters, since=since, page_size=args.limit))
    backlog.reverse()  # the API answers newest first; a log reads oldest first
    if con.as_json and not args.follow:
        con.json([e.raw for e in backlog])
        return EXIT_OK
    for event in backlog:
        con.json_line(event.raw) if con.as_json else con.print(_event_line(event, con))
    if not args.follow:
        if not backlog and not con.as_json:
            con.print("No events.")
        return EXIT_OK
    con.out.flush()
    after = backlog[-1].id if backlog else None
    for event in client.follow_events(after=after, poll_interval=args.interval, max_wait=args.follow_for, **filters):
        if con.as_json:
            con.json_line(event.raw)
        else:
            con.print(_event_line(event, con))
            con.out.flush()
    return EXIT_OK


# --- alerts ---------------------------------------------------------------------------------------------------

ALERT_CONDITIONS = (
    "agent_error",
    "agent_stale",
    "agent_quarantined",
    "session_failed",
    "task_queue_wait",
    "delivery_failures",
    "sync_failures",
    "input_inbox_age",
)
ALERT_CHANNELS = ("webhook", "slack", "email")


def cmd_alerts_list(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    alerts = list(client.list_alerts(status=args.status, rule=args.rule, page_size=min(args.limit, 500)))
    alerts = alerts[: args.limit]
    if con.as_json:
        con.json([a.raw for a in alerts])
        return EXIT_OK
    if not alerts:
        con.print("No alerts.")
        return EXIT_OK
    s = con.style
    rows = []
    for a in alerts:
        sent = [f"{d.kind}:{d.status}" + (f"({d.reason})" if d.reason else "") for d in a.deliveries]
        status = s(a.status, "red" if a.status == "firing" else "green")
        rows.append(
            [str(a.id), fmt_time(a.fired_at), a.rule_name, a.key, status, truncate(a.summary, 60), " ".join(sent)]
        )
    con.print(table(["ID", "FIRED", "RULE", "SUBJECT", "STATUS", "SUMMARY", "DELIVERIES"], rows, s))
    return EXIT_OK


def _rule_rows(rules: list[Any], s: Style) -> str:
    rows = [
        [
            str(r.id),
            r.name,
            r.condition + (f" > {r.threshold:g}" if r.threshold is not None else ""),
            r.workflow_id or "-",
            f"{r.channel} {truncate(r.target, 40)}",
            f"{r.quiet_period_seconds}s",
            "yes" if r.enabled else s("no", "yellow"),
        ]
        for r in rules
    ]
    return table(["ID", "NAME", "CONDITION", "WORKFLOW", "CHANNEL", "QUIET", "ENABLED"], rows, s)


def cmd_alert_rules_list(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    rules = list(client.list_alert_rules(page_size=500))
    if con.as_json:
        con.json([r.raw for r in rules])
    elif not rules:
        con.print("No alert rules.")
    else:
        con.print(_rule_rows(rules, con.style))
    return EXIT_OK


def _show_rule(rule: Any, con: Console, verb: str) -> int:
    return _done(con, rule, f"Alert rule {con.style(rule.name, 'bold')} (id {rule.id}) {verb}.")


def cmd_alert_rules_create(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    rule = client.create_alert_rule(
        name=args.name,
        condition=args.condition,
        channel=args.channel,
        target=args.target,
        threshold=args.threshold,
        workflow_id=args.workflow,
        quiet_period_seconds=args.quiet,
        enabled=not args.disabled,
    )
    return _show_rule(rule, con, "created")


def cmd_alert_rules_update(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    changes = {
        key: value
        for key, value in (
            ("name", args.name),
            ("condition", args.condition),
            ("threshold", args.threshold),
            ("workflowId", args.workflow),
            ("channel", args.channel),
            ("target", args.target),
            ("quietPeriodSeconds", args.quiet),
            ("enabled", args.enabled),
        )
        if value is not None
    }
    if not changes:
        raise UsageError("Nothing to change: give at least one option (see --help).")
    return _show_rule(client.update_alert_rule(args.rule_id, **changes), con, "updated")


def cmd_alert_rules_delete(client: OpsCoreClient, args: argparse.Namespace, con: Console) -> int:
    client.delete_alert_rule(args.rule_id)
    if con.as_json:
        con.json({"deleted": args.rule_id})
    else:
        con.print(f"Alert rule {args.rule_id} deleted.")
    return EXIT_OK


def _alerts_parser(sub: Any) -> None:
    alerts = sub.add_parser("alerts", help="list alerts and manage alert rules")
    a_sub = alerts.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = a_sub.add_parser("list", help="alerts, newest first, with their deliveries")
    p.add_argument("--status", choices=("firing", "resolved"))
    p.add_argument("--rule", metavar="ID", help="only this rule's alerts")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.set_defaults(handler=cmd_alerts_list)
    rules = a_sub.add_parser("rules", help="list, create, update and delete alert rules")
    r_sub = rules.add_subparsers(dest="rules_action", metavar="ACTION", required=True)
    p = r_sub.add_parser("list", help="every alert rule")
    p.set_defaults(handler=cmd_alert_rules_list)
    for name, handler, text in (
        ("create", cmd_alert_rules_create, "create a rule"),
        ("update", cmd_alert_rules_update, "change some fields of a rule"),
    ):
        p = r_sub.add_parser(name, help=text)
        creating = name == "create"
        if creating:
            p.add_argument("name", metavar="NAME")
        else:
            p.add_argument("rule_id", metavar="ID")
            p.add_argument("--name")
        p.add_argument("--condition", required=creating, choices=ALERT_CONDITIONS)
        p.add_argument("--channel", required=creating, choices=ALERT_CHANNELS)
        p.add_argument("--target", required=creating, metavar="URL|EMAILS", help="webhook URL or email addresses")
        p.add_argument("--threshold", type=float, metavar="N", help="seconds or a count, per condition")
        p.add_argument("--workflow", metavar="ID", help="only this workflow (session and task conditions)")
        p.add_argument("--quiet", type=int, metavar="SECONDS", help="quiet period (default 300)")
        if creating:
            p.add_argument("--disabled", action="store_true", help="create it disabled")
        else:
            switch = p.add_mutually_exclusive_group()
            switch.add_argument("--enable", dest="enabled", action="store_const", const=True)
            switch.add_argument("--disable", dest="enabled", action="store_const", const=False)
        p.set_defaults(handler=handler)
    p = r_sub.add_parser("delete", help="delete a rule with its alerts")
    p.add_argument("rule_id", metavar="ID")
    p.set_defaults(handler=cmd_alert_rules_delete)


# --- parser ---------------------------------------------------------------------------------------------------


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout-wait", type=float, default=None, metavar="SECONDS", help="give up waiting after this (exit 10)"
    )
    parser.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="poll interval (default 1)")
    parser.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opscore",
        description="Command-line client for Ops-Core: agents, workflows, sessions, the operation log and alerts.",
        epilog="Exit codes: 0 ok, 1 session failed/cancelled or other error, 2 usage, 3 auth, 4 not found, "
        "5 server, 6 connection/timeout, 7 validation, 8 conflict, 9 rate limited, 10 wait timed out.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--api-url", help="Ops-Core URL (env OPSCORE_API_URL, default http://127.0.0.1:8080)")
    parser.add_argument("--api-key", help="API key or token (env OPSCORE_API_KEY)")
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds (default 10)")
    parser.add_argument("--retries", type=int, default=3, help="retries of idempotent calls (default 3)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log HTTP calls to stderr (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    agents = sub.add_parser("agents", help="list and show agents, set their state, drain and quarantine them")
    agents_sub = agents.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = agents_sub.add_parser("list", help="list agents")
    p.add_argument("--state", choices=AGENT_STATES)
    p.add_argument("--capability", metavar="C")
    p.add_argument("--drained", action="store_true", help="only drained agents")
    p.add_argument("--quarantined", action="store_true", help="only quarantined agents")
    p.add_argument("--limit", type=int, default=500, help="at most this many (default 500)")
    p.set_defaults(handler=cmd_agents_list)
    p = agents_sub.add_parser("show", help="one agent with its recent state history")
    p.add_argument("agent_id", metavar="ID")
    p.set_defaults(handler=cmd_agents_show)
    p = agents_sub.add_parser("set-state", help="report a state for an agent (as the AgentKit SDK does)")
    p.add_argument("agent_id", metavar="ID")
    p.add_argument("state", metavar="STATE", choices=AGENT_STATES, help=" | ".join(AGENT_STATES))
    p.add_argument("--details", metavar="JSON", help="details object, e.g. '{\"progress\": 50}'")
    p.set_defaults(handler=cmd_agents_set_state)
    for name, handler, text in (
        ("drain", cmd_agents_drain, "take an agent out of rotation (its current task finishes)"),
        ("undrain", cmd_agents_undrain, "return a drained agent to rotation"),
        ("quarantine", cmd_agents_quarantine, "quarantine an agent (for --seconds, or until released)"),
        ("release", cmd_agents_release, "release an agent from quarantine"),
    ):
        p = agents_sub.add_parser(name, help=text)
        p.add_argument("agent_id", metavar="ID")
        if name == "quarantine":
            p.add_argument("--seconds", type=int, help="cool-down, then one trial task (default: until released)")
            p.add_argument("--reason", help="shown on the agent and in the operation log")
        p.set_defaults(handler=handler)
    p = agents_sub.add_parser("set-capabilities", help="set an agent's capabilities (source: operator)")
    p.add_argument("agent_id", metavar="ID")
    p.add_argument("capabilities", metavar="CAPS", help="comma-separated, e.g. summarise,translate ('' for none)")
    p.set_defaults(handler=cmd_agents_set_capabilities)

    workflows = sub.add_parser("workflows", help="list, show and load workflow definitions")
    wf_sub = workflows.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = wf_sub.add_parser("list", help="list definitions (latest version of each)")
    p.set_defaults(handler=cmd_workflows_list)
    p = wf_sub.add_parser("show", help="one definition and its tasks")
    p.add_argument("workflow_id", metavar="ID")
    p.add_argument("--version")
    p.set_defaults(handler=cmd_workflows_show)
    p = wf_sub.add_parser("load", help="store definitions from JSON/YAML files")
    p.add_argument("files", metavar="FILE", nargs="+")
    p.set_defaults(handler=cmd_workflows_load)
    p = wf_sub.add_parser("pause", help="pause a workflow (all versions): new sessions wait as pending")
    p.add_argument("workflow_id", metavar="ID")
    p.add_argument("--reject", action="store_true", help="refuse new sessions (409) instead of keeping them")
    p.add_argument("--reason", metavar="TEXT")
    p.set_defaults(handler=cmd_workflows_pause)
    p = wf_sub.add_parser("resume", help="resume a paused workflow: its pending sessions start")
    p.add_argument("workflow_id", metavar="ID")
    p.set_defaults(handler=cmd_workflows_resume)
    p = wf_sub.add_parser("limit", help="show or set the most sessions of a workflow running at once")
    p.add_argument("workflow_id", metavar="ID")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--max-running", type=int, metavar="N", help="at most N sessions running at once")
    group.add_argument("--clear", action="store_true", help="remove the limit")
    p.set_defaults(handler=cmd_workflows_limit)

    dispatch = sub.add_parser("dispatch", help="maintenance mode, capability limits and waiting tasks")
    d_sub = dispatch.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = d_sub.add_parser("status", help="maintenance mode, paused workflows and every limit with its usage")
    p.set_defaults(handler=cmd_dispatch_status)
    p = d_sub.add_parser("pause", help="maintenance mode on: nothing is dispatched (reports still apply)")
    p.add_argument("--reason", metavar="TEXT")
    p.set_defaults(handler=cmd_dispatch_pause)
    p = d_sub.add_parser("resume", help="maintenance mode off: dispatch starts again")
    p.set_defaults(handler=cmd_dispatch_resume)
    p = d_sub.add_parser("waiting", help="tasks waiting for dispatch and why")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.set_defaults(handler=cmd_dispatch_waiting)
    p = d_sub.add_parser("set-limit", help="at most N tasks of a capability dispatched or running at once")
    p.add_argument("capability", metavar="CAPABILITY")
    p.add_argument("max_in_flight", metavar="N", type=int)
    p.set_defaults(handler=cmd_dispatch_set_limit)
    p = d_sub.add_parser("remove-limit", help="remove a capability's limit")
    p.add_argument("capability", metavar="CAPABILITY")
    p.set_defaults(handler=cmd_dispatch_remove_limit)

    p = sub.add_parser("run", help="start a workflow session")
    p.add_argument("workflow_id", metavar="WORKFLOW_ID")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--agent", metavar="ID", help="send every task to this agent")
    target.add_argument(
        "--capability", metavar="C", help="route by capability (the default); checks the workflow needs C"
    )
    p.add_argument("--param", metavar="K=V", action="append", default=[], help="merged into initialPayload")
    p.add_argument("--payload", metavar="JSON", help="initialPayload object")
    p.add_argument("--version", help="definition version (default latest)")
    p.add_argument("--idempotency-key", metavar="KEY", help="the same key returns the same session")
    p.add_argument("--wait", action="store_true", help="show progress until the session ends; exit 0 iff completed")
    _wait_options(p)
    p.set_defaults(handler=cmd_run)

    sessions = sub.add_parser("sessions", help="list, show, cancel, retry and watch sessions")
    s_sub = sessions.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = s_sub.add_parser("list", help="list sessions, newest first")
    p.add_argument("--status", metavar="S", help="pending|running|waiting_for_input|completed|failed|cancelled")
    p.add_argument("--workflow", metavar="ID")
    p.add_argument("--agent", metavar="ID")
    p.add_argument("--since", metavar="T", help="ISO-8601 or a duration back from now (10m, 2h, 1d)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.set_defaults(handler=cmd_sessions_list)
    for name, handler, text in (
        ("show", cmd_sessions_show, "one session with its task runs"),
        ("cancel", cmd_sessions_cancel, "cancel a session"),
        ("retry", cmd_sessions_retry, "re-run a failed session from its failed task"),
        ("watch", cmd_sessions_watch, "show progress until the session ends; exit 0 iff completed"),
    ):
        p = s_sub.add_parser(name, help=text)
        p.add_argument("session_id", metavar="ID")
        if name == "retry":
            p.add_argument("--wait", action="store_true", help="then watch it")
        if name in ("retry", "watch"):
            _wait_options(p)
        p.set_defaults(handler=handler)

    p = sub.add_parser("inbox", help="approval and input tasks waiting for you")
    p.add_argument("--workflow", metavar="ID")
    p.add_argument("--session", metavar="ID")
    p.add_argument("--kind", choices=["approval", "input"])
    p.set_defaults(handler=cmd_inbox)
    for name, text in (("approve", "approve a waiting approval task"), ("reject", "reject a waiting approval task")):
        p = sub.add_parser(name, help=text)
        p.add_argument("session_id", metavar="SESSION")
        p.add_argument("task_id", metavar="TASK")
        p.add_argument("--comment", metavar="TEXT", help="recorded with the answer; later tasks can read it")
        if name == "approve":
            p.add_argument("--option", metavar="O", help="another of the task's options than 'approve'")
        else:
            p.set_defaults(option=None)
        p.add_argument("--idempotency-key", metavar="KEY", help="repeating with the same key returns the answer")
        p.set_defaults(handler=cmd_approve)
    p = sub.add_parser("input", help="submit the value of a waiting input task")
    p.add_argument("session_id", metavar="SESSION")
    p.add_argument("task_id", metavar="TASK")
    p.add_argument("--json", dest="json_value", metavar="JSON", required=True, help="the value, a JSON object")
    p.add_argument("--idempotency-key", metavar="KEY", help="repeating with the same key returns the answer")
    p.set_defaults(handler=cmd_input)

    p = sub.add_parser("logs", help="the operation log")
    p.add_argument("--agent", metavar="ID")
    p.add_argument("--session", metavar="ID")
    p.add_argument("--level", metavar="L", help="debug|info|warning|error (or a comma list)")
    p.add_argument("--type", metavar="T", help="event type, a comma list, or a prefix: task.*")
    p.add_argument("--since", metavar="T", help="ISO-8601 or a duration back from now (10m, 2h, 1d)")
    p.add_argument("-q", "--query", dest="q", metavar="TEXT", help="text search")
    p.add_argument("--limit", type=int, default=50, help="how many recent events to show first (default 50)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="poll interval when following")
    p.add_argument("--follow-for", type=float, default=None, help=argparse.SUPPRESS)  # bounded follow (tests)
    p.set_defaults(handler=cmd_logs)
    _alerts_parser(sub)
    return parser


def exit_for(error: OpsCoreError) -> int:
    for cls, code in _EXIT_BY_ERROR:
        if isinstance(error, cls):
            return code
    return EXIT_FAILED


def _hint(error: OpsCoreError) -> str:
    if isinstance(error, AuthenticationError):
        return " — check --api-key / OPSCORE_API_KEY"
    if isinstance(error, OpsCoreConnectionError):
        return " — is Ops-Core running? (--api-url / OPSCORE_API_URL)"
    return ""


def _configure_logging(verbosity: int) -> None:
    if verbosity <= 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    sdk_logger = logging.getLogger("opscore_sdk")
    sdk_logger.addHandler(handler)
    sdk_logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    con = Console(args.json)
    _configure_logging(args.verbose)
    handler: Callable[[OpsCoreClient, argparse.Namespace, Console], int] = args.handler
    try:
        with OpsCoreClient(args.api_url, args.api_key, timeout=args.timeout, retries=args.retries) as client:
            return handler(client, args, con)
    except UsageError as exc:
        con.error(str(exc), code="usage", exit_code=EXIT_USAGE)
        return EXIT_USAGE
    except SessionWaitTimeout as exc:
        if exc.session is not None and con.as_json:
            con.json(exc.session.raw)
        con.error(exc.message, code="wait_timeout", exit_code=EXIT_WAIT_TIMEOUT)
        return EXIT_WAIT_TIMEOUT
    except OpsCoreError as exc:
        code = exit_for(exc)
        con.error(f"{exc}{_hint(exc)}", code=exc.code, exit_code=code)
        return code
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `opscore logs | head`
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
