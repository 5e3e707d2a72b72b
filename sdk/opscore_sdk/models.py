"""Typed views of the API's JSON: stdlib dataclasses, built with ``from_dict``.

Every model keeps the dict it was built from in ``raw`` (fields the SDK does not know yet included), ignores
unknown keys, tolerates missing ones (``None``/empty defaults) and turns timestamps into aware ``datetime``s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Generic, TypeVar

T = TypeVar("T", bound="Model")

TERMINAL_SESSION_STATUSES = frozenset({"completed", "failed", "cancelled"})
TERMINAL_TASK_STATUSES = frozenset({"completed", "rejected", "failed", "timed_out", "cancelled", "skipped"})


def parse_datetime(value: Any) -> datetime | None:
    """An aware datetime from an ISO-8601 string (``Z`` accepted); naive values are taken as UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)  # noqa: UP017 - keep 3.10 compatible
    return parsed


def _key(name: str, convert: Callable[[Any], Any] | None = None, default: Any = None, factory: Any = None) -> Any:
    metadata = {"key": name, "convert": convert}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _ts(name: str) -> Any:
    return _key(name, parse_datetime)


def _list_of(cls: type[Model]) -> Callable[[Any], list[Any]]:
    def convert(value: Any) -> list[Any]:
        return [cls.from_dict(item) for item in value or [] if isinstance(item, dict)]

    return convert


@dataclass
class Model:
    """Base of all models: ``from_dict`` maps the camelCase keys declared on each field."""

    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, kw_only=True)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
        data = data if isinstance(data, dict) else {}
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = f.metadata.get("key")
            if not key or key not in data:
                continue
            value = data[key]
            convert = f.metadata.get("convert")
            if convert is not None and value is not None:
                try:
                    value = convert(value)
                except (TypeError, ValueError):
                    value = None
            if value is None and f.default_factory is not dataclasses.MISSING:  # keep [] / {} over null
                continue
            values[f.name] = value
        return cls(**values, raw=dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The JSON the model was built from (a copy)."""
        return dict(self.raw)


@dataclass
class StateRecord(Model):
    """One state report in an agent's history."""

    state: str = _key("state", default="")
    details: dict[str, Any] = _key("details", factory=dict)
    timestamp: datetime | None = _ts("timestamp")
    received_at: datetime | None = _ts("receivedAt")


@dataclass
class AgentState(Model):
    """An agent's current state (``GET /v1/opscore/agent/{id}/state``)."""

    agent_id: str = _key("agentId", default="")
    state: str = _key("state", default="")
    details: dict[str, Any] = _key("details", factory=dict)
    timestamp: datetime | None = _ts("timestamp")


@dataclass
class StateReportAccepted(Model):
    """The answer to a state report."""

    agent_id: str = _key("agentId", default="")
    status: str = _key("status", default="")
    message: str = _key("message", default="")


@dataclass
class Agent(Model):
    """An agent as Ops-Core knows it; ``recent_history`` is filled by ``get_agent`` only."""

    agent_id: str = _key("agentId", default="")
    name: str = _key("name", default="")
    version: str = _key("version", default="")
    capabilities: list[str] = _key("capabilities", factory=list)
    capabilities_known: bool = _key("capabilitiesKnown", default=False)
    contact_endpoint: str = _key("contactEndpoint", default="")
    metadata: dict[str, Any] = _key("metadata", factory=dict)
    source: str = _key("source", default="")
    registered: bool = _key("registered", default=False)
    registered_at: datetime | None = _ts("registeredAt")
    deregistered_at: datetime | None = _ts("deregisteredAt")
    state: str | None = _key("state")
    state_timestamp: datetime | None = _ts("stateTimestamp")
    state_details: dict[str, Any] = _key("stateDetails", factory=dict)
    last_seen_at: datetime | None = _ts("lastSeenAt")
    stale: bool = _key("stale", default=False)
    busy: bool = _key("busy", default=False)
    delivery_failures: int = _key("deliveryFailures", default=0)
    last_delivery_failure_at: datetime | None = _ts("lastDeliveryFailureAt")
    capabilities_source: str = _key("capabilitiesSource", default="")
    drained: bool = _key("drained", default=False)
    drained_at: datetime | None = _ts("drainedAt")
    quarantined: bool = _key("quarantined", default=False)
    breaker_state: str = _key("breakerState", default="closed")
    quarantined_until: datetime | None = _ts("quarantinedUntil")
    quarantine_reason: str = _key("quarantineReason", default="")
    consecutive_failures: int = _key("consecutiveFailures", default=0)
    created_at: datetime | None = _ts("createdAt")
    recent_history: list[StateRecord] = _key("recentHistory", _list_of(StateRecord), factory=list)


@dataclass
class WorkflowTask(Model):
    """One task of a workflow definition."""

    task_id: str = _key("taskId", default="")
    name: str = _key("name", default="")
    agent_capability: str = _key("agentCapability", default="")
    parameters: dict[str, Any] = _key("parameters", factory=dict)
    next_task_id: str | None = _key("nextTaskId")
    depends_on: list[str] = _key("dependsOn", factory=list)
    max_retries: int | None = _key("maxRetries")
    retry_backoff_seconds: float | None = _key("retryBackoffSeconds")
    timeout_seconds: float | None = _key("timeoutSeconds")
    queue_timeout_seconds: float | None = _key("queueTimeoutSeconds")
    priority: int | None = _key("priority")
    fallback_task_id: str | None = _key("fallbackTaskId")
    kind: str = _key("kind", default="agent")
    prompt: str | None = _key("prompt")
    options: list[str] | None = _key("options")
    input_schema: dict[str, Any] | None = _key("inputSchema")
    assignees: list[str] = _key("assignees", factory=list)
    on_timeout: Any = _key("onTimeout")
    on_reject: str | None = _key("onReject")
    remind_after_seconds: float | None = _key("remindAfterSeconds")


@dataclass
class WorkflowDefinition(Model):
    """A workflow definition (one version)."""

    id: str = _key("id", default="")
    name: str = _key("name", default="")
    description: str = _key("description", default="")
    version: str = _key("version", default="")
    defaults: dict[str, Any] = _key("defaults", factory=dict)
    tasks: list[WorkflowTask] = _key("tasks", _list_of(WorkflowTask), factory=list)
    created_at: datetime | None = _ts("createdAt")
    source: str = _key("source", default="")

    @property
    def capabilities(self) -> list[str]:
        """The distinct capabilities its tasks need, in task order."""
        return list(dict.fromkeys(t.agent_capability for t in self.tasks if t.agent_capability))


@dataclass
class SessionStarted(Model):
    """The answer to triggering a workflow (202)."""

    session_id: str = _key("sessionId", default="")
    workflow_id: str = _key("workflowId", default="")
    workflow_version: str | None = _key("workflowVersion")
    message: str = _key("message", default="")


@dataclass
class TaskRun(Model):
    """One attempt at one task of a session."""

    task_run_id: str = _key("taskRunId", default="")
    task_id: str = _key("taskId", default="")
    attempt: int = _key("attempt", default=1)
    status: str = _key("status", default="")
    agent_id: str | None = _key("agentId")
    created_at: datetime | None = _ts("createdAt")
    ready_at: datetime | None = _ts("readyAt")
    dispatched_at: datetime | None = _ts("dispatchedAt")
    started_at: datetime | None = _ts("startedAt")
    ended_at: datetime | None = _ts("endedAt")
    duration_ms: float | None = _key("durationMs")
    queue_wait_ms: float | None = _key("queueWaitMs")
    dispatch_latency_ms: float | None = _key("dispatchLatencyMs")
    result: Any = _key("result")
    error: Any = _key("error")
    waiting_reason: str | None = _key("waitingReason")
    kind: str = _key("kind", default="agent")
    prompt: str | None = _key("prompt")
    answered_by: str | None = _key("answeredBy")
    answered_at: datetime | None = _ts("answeredAt")
    answered_via: str | None = _key("answeredVia")

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_TASK_STATUSES


@dataclass
class HumanTask(Model):
    """An approval or input task: waiting in the inbox, or as answered (with who, when and how)."""

    session_id: str = _key("sessionId", default="")
    task_id: str = _key("taskId", default="")
    task_run_id: str = _key("taskRunId", default="")
    workflow_id: str | None = _key("workflowId")
    kind: str = _key("kind", default="")
    status: str = _key("status", default="")
    prompt: str = _key("prompt", default="")
    options: list[str] | None = _key("options")
    input_schema: dict[str, Any] | None = _key("inputSchema")
    assignees: list[str] = _key("assignees", factory=list)
    waiting_since: datetime | None = _ts("waitingSince")
    timeout_at: datetime | None = _ts("timeoutAt")
    on_timeout: Any = _key("onTimeout")
    answer: Any = _key("answer")
    answered_by: str | None = _key("answeredBy")
    answered_at: datetime | None = _ts("answeredAt")
    answered_via: str | None = _key("answeredVia")
    result: Any = _key("result")


@dataclass
class Session(Model):
    """A workflow session; ``tasks`` is filled by ``get_session`` (lists carry summaries only)."""

    session_id: str = _key("sessionId", default="")
    workflow_id: str = _key("workflowId", default="")
    workflow_version: str | None = _key("workflowVersion")
    agent_id: str | None = _key("agentId")
    status: str = _key("status", default="")
    started_at: datetime | None = _ts("startedAt")
    ended_at: datetime | None = _ts("endedAt")
    error: Any = _key("error")
    initial_payload: dict[str, Any] = _key("initialPayload", factory=dict)
    created_at: datetime | None = _ts("createdAt")
    timings: dict[str, Any] = _key("timings", factory=dict)
    tasks: list[TaskRun] = _key("tasks", _list_of(TaskRun), factory=list)

    TERMINAL: ClassVar[frozenset[str]] = TERMINAL_SESSION_STATUSES

    @property
    def is_finished(self) -> bool:
        """True once the session is completed, failed or cancelled."""
        return self.status in TERMINAL_SESSION_STATUSES


@dataclass
class Event(Model):
    """One operation-log event."""

    id: int | str | None = _key("id")
    created_at: datetime | None = _ts("createdAt")
    level: str = _key("level", default="")
    event_type: str = _key("eventType", default="")
    agent_id: str = _key("agentId", default="")
    session_id: str = _key("sessionId", default="")
    task_id: str = _key("taskId", default="")
    message: str = _key("message", default="")
    context: dict[str, Any] = _key("context", factory=dict)


@dataclass
class WorkflowControl(Model):
    """A workflow's pause state and running-sessions limit, with its running and pending sessions."""

    workflow_id: str = _key("workflowId", default="")
    paused: bool = _key("paused", default=False)
    paused_at: datetime | None = _ts("pausedAt")
    reject_when_paused: bool = _key("rejectWhenPaused", default=False)
    pause_reason: str = _key("pauseReason", default="")
    max_running_sessions: int | None = _key("maxRunningSessions")
    running_sessions: int = _key("runningSessions", default=0)
    pending_sessions: int = _key("pendingSessions", default=0)


@dataclass
class CapabilityLimit(Model):
    """The most tasks of one capability dispatched or running at once, and how many are now."""

    capability: str = _key("capability", default="")
    max_in_flight: int = _key("maxInFlight", default=0)
    in_flight: int = _key("inFlight", default=0)


@dataclass
class DispatchStatus(Model):
    """Maintenance mode, paused workflows and every concurrency limit with its usage."""

    paused: bool = _key("paused", default=False)
    paused_at: datetime | None = _ts("pausedAt")
    reason: str = _key("reason", default="")
    paused_workflows: list[str] = _key("pausedWorkflows", factory=list)
    workflow_limits: list[dict[str, Any]] = _key("workflowLimits", factory=list)
    capability_limits: list[CapabilityLimit] = _key("capabilityLimits", _list_of(CapabilityLimit), factory=list)
    waiting_tasks: int = _key("waitingTasks", default=0)


@dataclass
class WaitingTask(Model):
    """A task run waiting for dispatch, and why (``"limit summarise: 10/10"``, ``"workflow paused"``…)."""

    task_run_id: str = _key("taskRunId", default="")
    session_id: str = _key("sessionId", default="")
    workflow_id: str = _key("workflowId", default="")
    task_id: str = _key("taskId", default="")
    capability: str = _key("capability", default="")
    priority: int = _key("priority", default=0)
    agent_id: str | None = _key("agentId")
    ready_at: datetime | None = _ts("readyAt")
    waiting_reason: str = _key("waitingReason", default="")


M = TypeVar("M")


class Page(list, Generic[M]):
    """One page of a paginated list: a ``list`` of models plus ``count``, ``next``, ``previous`` and ``page``."""

    def __init__(self, items: list[M], *, count: int | None, next: str | None, previous: str | None, page: int) -> None:
        super().__init__(items)
        self.count = count
        self.next = next
        self.previous = previous
        self.page = page

    @property
    def has_next(self) -> bool:
        return bool(self.next)


@dataclass
class AlertRule(Model):
    """An alert rule: a condition (with its threshold and workflow filter), a channel and a quiet period."""

    id: int | None = _key("id")
    name: str = _key("name", default="")
    condition: str = _key("condition", default="")
    threshold: float | None = _key("threshold")
    workflow_id: str | None = _key("workflowId")
    channel: str = _key("channel", default="")
    target: str = _key("target", default="")
    quiet_period_seconds: int | None = _key("quietPeriodSeconds")
    enabled: bool = _key("enabled", default=True)
    created_at: datetime | None = _ts("createdAt")
    updated_at: datetime | None = _ts("updatedAt")


@dataclass
class AlertDelivery(Model):
    """One notification of an alert (``kind`` firing or resolved) and its attempts."""

    id: int | None = _key("id")
    kind: str = _key("kind", default="")
    channel: str = _key("channel", default="")
    status: str = _key("status", default="")
    attempts: int = _key("attempts", default=0)
    status_code: int | None = _key("statusCode")
    reason: str | None = _key("reason")
    next_attempt_at: datetime | None = _ts("nextAttemptAt")
    created_at: datetime | None = _ts("createdAt")
    sent_at: datetime | None = _ts("sentAt")


@dataclass
class Alert(Model):
    """An alert raised by a rule for one subject (``key``: an agent, a workflow…), with its deliveries."""

    id: int | None = _key("id")
    rule_id: int | None = _key("ruleId")
    rule_name: str = _key("ruleName", default="")
    condition: str = _key("condition", default="")
    key: str = _key("key", default="")
    status: str = _key("status", default="")
    summary: str = _key("summary", default="")
    details: dict[str, Any] = _key("details", factory=dict)
    occurrences: int = _key("occurrences", default=0)
    fired_at: datetime | None = _ts("firedAt")
    last_occurred_at: datetime | None = _ts("lastOccurredAt")
    resolved_at: datetime | None = _ts("resolvedAt")
    deliveries: list[AlertDelivery] = _key("deliveries", _list_of(AlertDelivery), factory=list)
