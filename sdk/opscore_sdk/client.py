"""``OpsCoreClient``: every Ops-Core API operation as a typed method."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from opscore_sdk._http import RetryPolicy, Transport
from opscore_sdk.exceptions import NotFoundError, SessionWaitTimeout
from opscore_sdk.models import (
    Agent,
    AgentState,
    Alert,
    AlertRule,
    CapabilityLimit,
    DispatchStatus,
    Event,
    HumanTask,
    Model,
    Page,
    Session,
    SessionStarted,
    StateRecord,
    StateReportAccepted,
    WaitingTask,
    WorkflowControl,
    WorkflowDefinition,
)

logger = logging.getLogger("opscore_sdk")

DEFAULT_API_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 10.0
DEFAULT_PAGE_SIZE = 100
AGENT_STATES = ("initializing", "idle", "active", "error", "finished")

M = TypeVar("M", bound=Model)


def _seg(value: str) -> str:
    """One URL path segment (agent ids may hold any character)."""
    if not isinstance(value, str) or not value:
        raise ValueError("An id must be a non-empty string.")
    return quote(value, safe="")


class OpsCoreClient:
    """A client for the Ops-Core HTTP API.

    ``base_url`` and ``api_key`` default to ``OPSCORE_API_URL`` / ``OPSCORE_API_KEY`` from the environment
    (URL default ``http://127.0.0.1:8080``). ``timeout`` is per HTTP request in seconds; ``retries`` is how many
    times an idempotent call (GET, or POST with an idempotency key) is retried after a connection error, a
    timeout or a 502/503/504, with exponential backoff. One pooled ``requests.Session`` is used; close it with
    :meth:`close` or use the client as a context manager.

    Every method raises an :class:`~opscore_sdk.exceptions.OpsCoreError` subclass on failure:
    ``AuthenticationError`` (401), ``PermissionDeniedError`` (403), ``NotFoundError`` (404),
    ``ValidationError`` (400), ``ConflictError`` (409), ``RateLimitedError`` (429), ``ServerError`` (5xx),
    ``OpsCoreConnectionError`` / ``OpsCoreTimeoutError``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff_factor: float = 0.5,
        max_backoff: float = 8.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("OPSCORE_API_URL") or DEFAULT_API_URL).rstrip("/")
        api_key = api_key if api_key is not None else os.environ.get("OPSCORE_API_KEY")
        self._transport = Transport(
            self.base_url,
            api_key,
            timeout=timeout,
            retry=RetryPolicy(retries=max(0, retries), backoff_factor=backoff_factor, max_backoff=max_backoff),
            session=session,
        )

    def __repr__(self) -> str:  # never shows the key
        return f"OpsCoreClient(base_url={self.base_url!r})"

    # --- plumbing -------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._transport.close()

    def __enter__(self) -> OpsCoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._transport.request("GET", path, params=params).json()

    def _post(self, path: str, body: Any = None, *, idempotency_key: str | None = None) -> requests.Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._transport.request("POST", path, json=body if body is not None else {}, headers=headers)

    def _page(self, model: type[M], path: str, params: dict[str, Any], page: int, page_size: int | None) -> Page[M]:
        data = self._get(path, {**params, "page": page if page != 1 else None, "page_size": page_size})
        if isinstance(data, list):  # an unpaginated list answer
            return Page([model.from_dict(i) for i in data], count=len(data), next=None, previous=None, page=1)
        return Page(
            [model.from_dict(item) for item in data.get("results") or []],
            count=data.get("count"),
            next=data.get("next"),
            previous=data.get("previous"),
            page=page,
        )

    def _iter(self, model: type[M], path: str, params: dict[str, Any], page_size: int) -> Iterator[M]:
        # Follows page numbers rather than the absolute ``next`` URL, which may name an unreachable host
        # behind a proxy.
        page = 1
        while True:
            current = self._page(model, path, params, page, page_size)
            yield from current
            if not current.has_next or not current:
                return
            page += 1

    # --- health ---------------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /health``: ``{"status": "ok", "checks": {...}}``. Raises ``ServerError`` (503) when degraded."""
        return self._get("/health")

    # --- agents and states ----------------------------------------------------------------------------------

    def report_state(
        self,
        agent_id: str,
        state: str,
        details: dict[str, Any] | None = None,
        *,
        timestamp: datetime | None = None,
    ) -> StateReportAccepted:
        """Report ``agent_id``'s state as the AgentKit SDK does (``timestamp`` defaults to now, UTC).

        Not retried (a POST without idempotency key). Raises ``ValidationError`` for an unknown state or bad body.
        """
        when = timestamp or datetime.now(timezone.utc)  # noqa: UP017
        if when.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        body = {"agentId": agent_id, "timestamp": when.isoformat(), "state": state, "details": details or {}}
        return StateReportAccepted.from_dict(self._post(f"/v1/opscore/agent/{_seg(agent_id)}/state", body).json())

    def get_state(self, agent_id: str) -> AgentState:
        """The agent's current state. Raises ``NotFoundError`` when Ops-Core has no state for it."""
        return AgentState.from_dict(self._get(f"/v1/opscore/agent/{_seg(agent_id)}/state"))

    def list_agents(
        self,
        *,
        state: str | None = None,
        capability: str | None = None,
        registered: bool | None = None,
        stale: bool | None = None,
        source: str | None = None,
        search: str | None = None,
        drained: bool | None = None,
        quarantined: bool | None = None,
        page: int = 1,
        page_size: int | None = None,
    ) -> Page[Agent]:
        """One page of agents matching the filters (``page_size`` up to 500)."""
        params = dict(state=state, capability=capability, registered=registered, stale=stale, source=source)
        params.update(search=search, drained=drained, quarantined=quarantined)
        return self._page(Agent, "/v1/opscore/agents", params, page, page_size)

    def iter_agents(
        self,
        *,
        state: str | None = None,
        capability: str | None = None,
        registered: bool | None = None,
        stale: bool | None = None,
        source: str | None = None,
        search: str | None = None,
        drained: bool | None = None,
        quarantined: bool | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Agent]:
        """Every agent matching the filters, fetching pages as needed."""
        params = dict(state=state, capability=capability, registered=registered, stale=stale, source=source)
        params.update(search=search, drained=drained, quarantined=quarantined)
        return self._iter(Agent, "/v1/opscore/agents", params, page_size)

    def get_agent(self, agent_id: str) -> Agent:
        """One agent with its 20 most recent state reports (``recent_history``). Raises ``NotFoundError``."""
        return Agent.from_dict(self._get(f"/v1/opscore/agents/{_seg(agent_id)}"))

    def agent_history(self, agent_id: str, *, page: int = 1, page_size: int | None = None) -> Page[StateRecord]:
        """One page of the agent's state history, newest first. Raises ``NotFoundError``."""
        return self._page(StateRecord, f"/v1/opscore/agents/{_seg(agent_id)}/history", {}, page, page_size)

    def iter_agent_history(self, agent_id: str, *, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[StateRecord]:
        """The agent's whole state history, newest first."""
        return self._iter(StateRecord, f"/v1/opscore/agents/{_seg(agent_id)}/history", {}, page_size)

    # --- operator controls on agents ---------------------------------------------------------------------------

    def drain_agent(self, agent_id: str) -> Agent:
        """Take an agent out of rotation: no new tasks, its current task finishes. Idempotent.

        Raises ``NotFoundError``, ``PermissionDeniedError`` without the operator scope.
        """
        return Agent.from_dict(self._post(f"/v1/opscore/agents/{_seg(agent_id)}/drain").json())

    def undrain_agent(self, agent_id: str) -> Agent:
        """Return a drained agent to rotation. Idempotent. Raises ``NotFoundError``."""
        return Agent.from_dict(self._post(f"/v1/opscore/agents/{_seg(agent_id)}/undrain").json())

    def quarantine_agent(self, agent_id: str, *, seconds: int | None = None, reason: str | None = None) -> Agent:
        """Quarantine an agent by hand: for ``seconds`` (then one trial task), or until released when omitted.

        Raises ``ValidationError`` for a bad ``seconds``, ``NotFoundError``.
        """
        body: dict[str, Any] = {"seconds": seconds}
        if reason:
            body["reason"] = reason
        return Agent.from_dict(self._post(f"/v1/opscore/agents/{_seg(agent_id)}/quarantine", body).json())

    def release_agent(self, agent_id: str) -> Agent:
        """Release an agent from quarantine (its circuit breaker closes). Idempotent. Raises ``NotFoundError``."""
        return Agent.from_dict(self._post(f"/v1/opscore/agents/{_seg(agent_id)}/release").json())

    def set_agent_capabilities(self, agent_id: str, capabilities: list[str]) -> Agent:
        """Set an agent's capabilities: known from now on, with source ``operator`` (a later registration from
        AgentKit with a non-empty list replaces them). Raises ``ValidationError``, ``NotFoundError``."""
        path = f"/v1/opscore/agents/{_seg(agent_id)}/capabilities"
        response = self._transport.request("PUT", path, json={"capabilities": list(capabilities)}, idempotent=True)
        return Agent.from_dict(response.json())

    # --- workflow definitions -------------------------------------------------------------------------------

    def list_workflows(self, *, page: int = 1, page_size: int | None = None) -> Page[WorkflowDefinition]:
        """One page of workflow definitions (the latest version of each id)."""
        return self._page(WorkflowDefinition, "/v1/opscore/workflows", {}, page, page_size)

    def iter_workflows(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[WorkflowDefinition]:
        """Every workflow definition (latest version of each id)."""
        return self._iter(WorkflowDefinition, "/v1/opscore/workflows", {}, page_size)

    def get_workflow(self, workflow_id: str, *, version: str | None = None) -> WorkflowDefinition:
        """A definition, the latest version unless ``version`` is given. Raises ``NotFoundError``."""
        return WorkflowDefinition.from_dict(
            self._get(f"/v1/opscore/workflows/{_seg(workflow_id)}", {"version": version})
        )

    def list_workflow_versions(self, workflow_id: str) -> list[WorkflowDefinition]:
        """Every version of a definition, newest first. Raises ``NotFoundError``."""
        data = self._get(f"/v1/opscore/workflows/{_seg(workflow_id)}/versions")
        items = data.get("results", []) if isinstance(data, dict) else data
        return [WorkflowDefinition.from_dict(item) for item in items]

    def create_workflow(self, definition: dict[str, Any] | WorkflowDefinition) -> WorkflowDefinition:
        """Store a definition. Sending the same id+version with identical content again is harmless.

        Raises ``ValidationError`` naming the faulty fields, ``ConflictError`` when that id+version already
        exists with different content.
        """
        body = definition.to_dict() if isinstance(definition, WorkflowDefinition) else definition
        return WorkflowDefinition.from_dict(self._post("/v1/opscore/workflows", body).json())

    @staticmethod
    def read_workflow_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Parse a definition file: JSON or YAML (by extension; ``.yaml``/``.yml``), one definition, a list of
        them, or several YAML documents. Raises ``ValueError`` for unreadable content, ``OSError`` for I/O."""
        file = Path(path)
        text = file.read_text(encoding="utf-8")
        if file.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            try:
                documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
            except yaml.YAMLError as exc:
                raise ValueError(f"{file}: invalid YAML: {exc}") from exc
        else:
            try:
                documents = [json.loads(text)]
            except json.JSONDecodeError as exc:
                raise ValueError(f"{file}: invalid JSON: {exc}") from exc
        definitions: list[dict[str, Any]] = []
        for doc in documents:
            for item in doc if isinstance(doc, list) else [doc]:
                if not isinstance(item, dict):
                    raise ValueError(f"{file}: a workflow definition must be an object")
                definitions.append(item)
        if not definitions:
            raise ValueError(f"{file}: no workflow definition found")
        return definitions

    def create_workflows_from_file(self, path: str | os.PathLike[str]) -> list[WorkflowDefinition]:
        """Read ``path`` (see :meth:`read_workflow_file`) and store each definition in it, in order."""
        return [self.create_workflow(d) for d in self.read_workflow_file(path)]

    # --- running workflows ----------------------------------------------------------------------------------

    def trigger_workflow(
        self,
        workflow_id: str,
        *,
        agent_id: str | None = None,
        initial_payload: dict[str, Any] | None = None,
        version: str | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> SessionStarted:
        """Start a session of a stored definition (``POST /workflows/{id}/run``).

        With ``agent_id`` every task goes to that agent; without it each task is routed by its own
        ``agentCapability``. An ``idempotency_key`` makes repeats return the same session; when none is given
        a fresh one is generated, so the call can be retried safely on connection errors without starting two
        sessions. Raises ``NotFoundError`` (definition/agent), ``ValidationError``.
        """
        body: dict[str, Any] = {"initialPayload": initial_payload or {}}
        if agent_id:
            body["agentId"] = agent_id
        if version:
            body["version"] = version
        if callback_url:
            body["callbackUrl"] = callback_url
        key = idempotency_key or str(uuid.uuid4())
        response = self._post(f"/v1/opscore/workflows/{_seg(workflow_id)}/run", body, idempotency_key=key)
        return SessionStarted.from_dict(response.json())

    def trigger_agent_workflow(
        self,
        agent_id: str,
        *,
        workflow_id: str | None = None,
        definition: dict[str, Any] | WorkflowDefinition | None = None,
        initial_payload: dict[str, Any] | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> SessionStarted:
        """Start a workflow for one agent (``POST /agent/{id}/workflow``, contract §5): give exactly one of
        ``workflow_id`` (stored definition) or ``definition`` (inline). Idempotency as in
        :meth:`trigger_workflow`. Raises ``ValueError`` for both/neither, ``NotFoundError``, ``ValidationError``.
        """
        if (workflow_id is None) == (definition is None):
            raise ValueError("Give exactly one of workflow_id or definition.")
        body: dict[str, Any] = {"initialPayload": initial_payload or {}}
        if workflow_id is not None:
            body["workflowDefinitionId"] = workflow_id
        else:
            body["workflowDefinition"] = (
                definition.to_dict() if isinstance(definition, WorkflowDefinition) else definition
            )
        if callback_url:
            body["callbackUrl"] = callback_url
        key = idempotency_key or str(uuid.uuid4())
        response = self._post(f"/v1/opscore/agent/{_seg(agent_id)}/workflow", body, idempotency_key=key)
        return SessionStarted.from_dict(response.json())

    # --- sessions -------------------------------------------------------------------------------------------

    def list_sessions(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        agent: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        page: int = 1,
        page_size: int | None = None,
    ) -> Page[Session]:
        """One page of session summaries (no ``tasks``), newest first."""
        params = dict(status=status, workflow=workflow, agent=agent, since=since, until=until)
        return self._page(Session, "/v1/opscore/sessions", params, page, page_size)

    def iter_sessions(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        agent: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Session]:
        """Every session summary matching the filters."""
        params = dict(status=status, workflow=workflow, agent=agent, since=since, until=until)
        return self._iter(Session, "/v1/opscore/sessions", params, page_size)

    def get_session(self, session_id: str) -> Session:
        """A session with its task runs and timings. Raises ``NotFoundError``."""
        return Session.from_dict(self._get(f"/v1/opscore/sessions/{_seg(session_id)}"))

    def cancel_session(self, session_id: str) -> Session:
        """Cancel a session. Raises ``ConflictError`` if it already ended, ``NotFoundError``."""
        return Session.from_dict(self._post(f"/v1/opscore/sessions/{_seg(session_id)}/cancel").json())

    def retry_session(self, session_id: str) -> Session:
        """Re-run a failed session from its failed task (completed tasks are kept).

        Raises ``ConflictError`` unless the session failed, ``NotFoundError``.
        """
        return Session.from_dict(self._post(f"/v1/opscore/sessions/{_seg(session_id)}/retry").json())

    # --- dispatch controls --------------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: Any = None) -> Any:
        # Every control write is idempotent (pausing twice is one pause), so it is retried like a GET.
        response = self._transport.request(method, path, json=body, idempotent=True)
        return response.json() if response.content else None

    def pause_workflow(
        self, workflow_id: str, *, reject_when_paused: bool = False, reason: str = ""
    ) -> WorkflowControl:
        """Pause every version of a workflow: new sessions wait as ``pending`` (running ones finish); with
        ``reject_when_paused`` new sessions are refused (``ConflictError``). Raises ``NotFoundError``."""
        body = {"rejectWhenPaused": reject_when_paused, "reason": reason}
        return WorkflowControl.from_dict(self._send("POST", f"/v1/opscore/workflows/{_seg(workflow_id)}/pause", body))

    def resume_workflow(self, workflow_id: str) -> WorkflowControl:
        """Resume a paused workflow: its pending sessions start. Raises ``NotFoundError``."""
        return WorkflowControl.from_dict(self._send("POST", f"/v1/opscore/workflows/{_seg(workflow_id)}/resume"))

    def get_workflow_controls(self, workflow_id: str) -> WorkflowControl:
        """A workflow's pause state and limit with its running/pending sessions. Raises ``NotFoundError``."""
        return WorkflowControl.from_dict(self._get(f"/v1/opscore/workflows/{_seg(workflow_id)}/controls"))

    def set_workflow_limit(self, workflow_id: str, max_running_sessions: int | None) -> WorkflowControl:
        """Set (``None``: remove) the most sessions of a workflow running at once.

        Raises ``ValidationError`` (below 1), ``NotFoundError``."""
        body = {"maxRunningSessions": max_running_sessions}
        return WorkflowControl.from_dict(self._send("PUT", f"/v1/opscore/workflows/{_seg(workflow_id)}/limits", body))

    def dispatch_status(self) -> DispatchStatus:
        """Maintenance mode, paused workflows and every concurrency limit with its current usage."""
        return DispatchStatus.from_dict(self._get("/v1/opscore/dispatch"))

    def pause_dispatch(self, *, reason: str = "") -> DispatchStatus:
        """Maintenance mode on: nothing is dispatched anywhere in the cluster (state reports are still applied)."""
        return DispatchStatus.from_dict(self._send("POST", "/v1/opscore/dispatch/pause", {"reason": reason}))

    def resume_dispatch(self) -> DispatchStatus:
        """Maintenance mode off: dispatch starts again."""
        return DispatchStatus.from_dict(self._send("POST", "/v1/opscore/dispatch/resume"))

    def list_waiting_tasks(self, *, page: int = 1, page_size: int | None = None) -> Page[WaitingTask]:
        """Task runs waiting for dispatch, in dispatch order, each with ``waiting_reason``."""
        return self._page(WaitingTask, "/v1/opscore/dispatch/waiting", {}, page, page_size)

    def iter_waiting_tasks(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[WaitingTask]:
        return self._iter(WaitingTask, "/v1/opscore/dispatch/waiting", {}, page_size)

    def list_capability_limits(self) -> list[CapabilityLimit]:
        """Every capability limit with its tasks in flight."""
        return list(self._iter(CapabilityLimit, "/v1/opscore/capability-limits", {}, DEFAULT_PAGE_SIZE))

    def set_capability_limit(self, capability: str, max_in_flight: int) -> CapabilityLimit:
        """Set the most tasks of ``capability`` dispatched or running at once. Raises ``ValidationError``."""
        body = {"maxInFlight": max_in_flight}
        return CapabilityLimit.from_dict(self._send("PUT", f"/v1/opscore/capability-limits/{_seg(capability)}", body))

    def delete_capability_limit(self, capability: str) -> None:
        """Remove a capability's limit. Raises ``NotFoundError`` when it has none."""
        self._send("DELETE", f"/v1/opscore/capability-limits/{_seg(capability)}")

    def wait_for_session(
        self,
        session_id: str,
        timeout: float | None = 300.0,
        poll_interval: float = 1.0,
        *,
        on_update: Callable[[Session], None] | None = None,
    ) -> Session:
        """Poll the session until it is completed, failed or cancelled and return it (whatever the outcome).

        ``on_update`` is called with every fetched session (for progress displays). ``timeout=None`` waits for
        ever. Raises ``SessionWaitTimeout`` (with ``.session``, the last seen) when ``timeout`` passes first,
        ``NotFoundError`` for an unknown session.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            session = self.get_session(session_id)
            if on_update is not None:
                on_update(session)
            if session.is_finished:
                return session
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SessionWaitTimeout(
                        f"Session {session_id} still {session.status or 'unknown'} after {timeout:g}s.",
                        session=session,
                    )
                time.sleep(min(poll_interval, remaining))
            else:
                time.sleep(poll_interval)

    # --- human tasks (approvals and inputs) ------------------------------------------------------------------

    def list_inbox(
        self,
        *,
        workflow: str | None = None,
        session: str | None = None,
        kind: str | None = None,
        page: int = 1,
        page_size: int | None = None,
    ) -> Page[HumanTask]:
        """One page of the approval and input tasks waiting for an answer that this client may give, oldest
        first. ``kind`` is ``approval`` or ``input``."""
        params = dict(workflow=workflow, session=session, kind=kind)
        return self._page(HumanTask, "/v1/opscore/inbox", params, page, page_size)

    def submit_input(
        self,
        session_id: str,
        task_id: str,
        value: dict[str, Any] | None = None,
        *,
        option: str | None = None,
        comment: str | None = None,
        idempotency_key: str | None = None,
        interface: str = "sdk",
    ) -> HumanTask:
        """Answer a waiting human task: ``value`` (an object matching its inputSchema) for an input task, or
        ``option`` (and a ``comment``) for an approval. The session goes on with the answer as the task's result.

        Safe to retry: an idempotency key (generated when none is given) makes a repeat return the stored answer.
        Raises ``ValidationError`` naming each bad field, ``PermissionDeniedError`` when this client is not among
        the task's assignees, ``ConflictError`` when someone answered first (the message names them),
        ``NotFoundError``.
        """
        if option is not None:
            body: dict[str, Any] = {"option": option}
            if comment is not None:
                body["comment"] = comment
        else:
            body = {"value": value if value is not None else {}}
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4()), "X-OpsCore-Interface": interface}
        path = f"/v1/opscore/sessions/{_seg(session_id)}/tasks/{_seg(task_id)}/input"
        return HumanTask.from_dict(self._transport.request("POST", path, json=body, headers=headers).json())

    def approve(self, session_id: str, task_id: str, *, comment: str = "", **kwargs: Any) -> HumanTask:
        """Approve a waiting approval task (``submit_input`` with ``option="approve"``)."""
        return self.submit_input(session_id, task_id, option="approve", comment=comment, **kwargs)

    def reject(self, session_id: str, task_id: str, *, comment: str = "", **kwargs: Any) -> HumanTask:
        """Reject a waiting approval task (``submit_input`` with ``option="reject"``)."""
        return self.submit_input(session_id, task_id, option="reject", comment=comment, **kwargs)

    # --- operation log --------------------------------------------------------------------------------------

    def list_events(
        self,
        *,
        agent: str | None = None,
        session: str | None = None,
        level: str | None = None,
        type: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        q: str | None = None,
        after: int | str | None = None,
        page: int = 1,
        page_size: int | None = None,
    ) -> Page[Event]:
        """One page of operation-log events: newest first, or with ``after`` (an event id) the events newer
        than it, oldest first."""
        params = dict(agent=agent, session=session, level=level, type=type, since=since, until=until, q=q)
        return self._page(Event, "/v1/opscore/events", {**params, "after": after}, page, page_size)

    def iter_events(
        self,
        *,
        agent: str | None = None,
        session: str | None = None,
        level: str | None = None,
        type: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        q: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Event]:
        """Every matching event, newest first."""
        params = dict(agent=agent, session=session, level=level, type=type, since=since, until=until, q=q)
        return self._iter(Event, "/v1/opscore/events", params, page_size)

    def follow_events(
        self,
        *,
        after: int | str | None = None,
        agent: str | None = None,
        session: str | None = None,
        level: str | None = None,
        type: str | None = None,
        q: str | None = None,
        poll_interval: float = 1.0,
        max_wait: float | None = None,
        page_size: int = 200,
    ) -> Iterator[Event]:
        """Yield new events as they are recorded, oldest first, polling with ``after=``.

        Starts after event ``after``; when ``None``, after the newest matching event now (only new events).
        Runs until the caller stops iterating, or for ``max_wait`` seconds when given. Transient errors are
        retried by the transport; others propagate.
        """
        params = dict(agent=agent, session=session, level=level, type=type, q=q)
        if after is None:
            newest = self.list_events(**params, page_size=1)
            after = newest[0].id if newest else 0
        deadline = None if max_wait is None else time.monotonic() + max_wait
        while True:
            batch = self.list_events(**params, after=after, page_size=page_size)
            for event in batch:
                yield event
                if event.id is not None:
                    after = event.id
            if batch.has_next or len(batch) >= page_size:
                continue  # more waiting: fetch at once
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                time.sleep(min(poll_interval, remaining))
            else:
                time.sleep(poll_interval)

    # --- helpers --------------------------------------------------------------------------------------------

    def agent_exists(self, agent_id: str) -> bool:
        """True if Ops-Core knows the agent."""
        try:
            self.get_agent(agent_id)
        except NotFoundError:
            return False
        return True

    # --- alerts ---------------------------------------------------------------------------------------------

    def list_alert_rules(self, *, page: int = 1, page_size: int | None = None) -> Page[AlertRule]:
        """One page of alert rules, by name."""
        return self._page(AlertRule, "/v1/opscore/alerts/rules", {}, page, page_size)

    def get_alert_rule(self, rule_id: int | str) -> AlertRule:
        """One alert rule. Raises ``NotFoundError``."""
        return AlertRule.from_dict(self._get(f"/v1/opscore/alerts/rules/{_seg(str(rule_id))}"))

    def create_alert_rule(
        self,
        *,
        name: str,
        condition: str,
        channel: str,
        target: str,
        threshold: float | None = None,
        workflow_id: str | None = None,
        quiet_period_seconds: int | None = None,
        enabled: bool = True,
    ) -> AlertRule:
        """Create an alert rule (docs/alerts.md lists the conditions and what ``threshold`` means for each).
        Raises ``ValidationError`` naming the field at fault, ``ConflictError`` for a name already used."""
        body: dict[str, Any] = {
            "name": name,
            "condition": condition,
            "channel": channel,
            "target": target,
            "enabled": enabled,
        }
        if threshold is not None:
            body["threshold"] = threshold
        if workflow_id:
            body["workflowId"] = workflow_id
        if quiet_period_seconds is not None:
            body["quietPeriodSeconds"] = quiet_period_seconds
        return AlertRule.from_dict(self._post("/v1/opscore/alerts/rules", body).json())

    def update_alert_rule(self, rule_id: int | str, **changes: Any) -> AlertRule:
        """Change some fields of a rule, given by their API names (``enabled=False``, ``quietPeriodSeconds=60``,
        ``threshold=30``…). Raises ``NotFoundError``, ``ValidationError``, ``ConflictError``."""
        response = self._transport.request(
            "PATCH", f"/v1/opscore/alerts/rules/{_seg(str(rule_id))}", json=changes, idempotent=True
        )
        return AlertRule.from_dict(response.json())

    def delete_alert_rule(self, rule_id: int | str) -> None:
        """Delete a rule with its alerts. Raises ``NotFoundError``."""
        self._transport.request("DELETE", f"/v1/opscore/alerts/rules/{_seg(str(rule_id))}")

    def list_alerts(
        self, *, status: str | None = None, rule: int | str | None = None, page: int = 1, page_size: int | None = None
    ) -> Page[Alert]:
        """One page of alerts, newest first, each with its deliveries; ``status`` is ``firing`` or ``resolved``."""
        return self._page(Alert, "/v1/opscore/alerts", {"status": status, "rule": rule}, page, page_size)
