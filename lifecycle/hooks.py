"""Explicit hooks other apps register for lifecycle events (no Django signals, no save() side effects).

The workflow engine registers a state listener in its AppConfig.ready(); lifecycle stays unaware of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class StateReportResult:
    """What one accepted state report did."""

    agent_pk: int
    agent_id: str
    state: str
    details: dict[str, Any]
    reported_at: datetime
    received_at: datetime
    agent_created: bool  # first time Ops-Core hears of this agent (contract 1c)
    stored: bool  # False for an exact duplicate, already in the history
    became_current: bool  # False for an out-of-order report older than the current state
    previous_state: str
    assigned_task: str  # the engine's task run in flight on this agent, "" if none
    probes: dict[str, bool] = field(default_factory=dict)  # registered state probes, evaluated with the write


StateListener = Callable[[StateReportResult], None]
_state_listeners: list[StateListener] = []


def register_state_listener(listener: StateListener) -> None:
    if listener not in _state_listeners:
        _state_listeners.append(listener)


@dataclass(frozen=True)
class StateProbe:
    """A listener's question (``expression``, SQL boolean) answered inside the state write's own statement, so the
    hot path pays no second round trip for it. Expressions may use the parameters %(agent_id)s, %(state)s,
    %(reported_at)s, %(details)s and %(now)s, and see the database as it was before the write (one snapshot).

    ``cte`` optionally adds common table expressions after the write's own (they may read ``upserted``, the agent
    row as written, and ``inserted``, the history row if the report was stored): a listener's own write, done
    in the same statement. ``params`` adds the parameters they use, computed from (agent id, state, details).
    Probes with a ``cte`` are Postgres-only: on other databases they answer False and the listener does the work.
    """

    expression: str
    cte: str = ""
    params: Callable[[str, str, Any], dict[str, Any]] | None = None


_state_probes: dict[str, StateProbe] = {}


def register_state_probe(
    name: str,
    sql_expression: str,
    *,
    cte: str = "",
    params: Callable[[str, str, Any], dict[str, Any]] | None = None,
) -> None:
    if not name.isidentifier():
        raise ValueError(f"State probe name {name!r} must be an identifier")
    _state_probes[name] = StateProbe(sql_expression, cte, params)


def state_probes() -> dict[str, StateProbe]:
    return dict(_state_probes)


def notify_state_listeners(result: StateReportResult) -> None:
    for listener in list(_state_listeners):
        listener(result)


# Called (after commit) when an operator returns an agent to rotation (undrain, quarantine release): the workflow
# engine wakes so waiting tasks need not wait for its next tick.
AgentAvailableListener = Callable[[str], None]
_agent_available_listeners: list[AgentAvailableListener] = []


def register_agent_available_listener(listener: AgentAvailableListener) -> None:
    if listener not in _agent_available_listeners:
        _agent_available_listeners.append(listener)


def notify_agent_available(agent_id: str) -> None:
    for listener in list(_agent_available_listeners):
        listener(agent_id)
