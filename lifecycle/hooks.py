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


# name -> SQL boolean expression. A probe answers a listener's question in the state write's own statement, so
# the hot path pays no second round trip for it. Expressions may use the parameters %(agent_id)s, %(state)s
# and %(now)s, and see the database as it was before the write (one snapshot).
_state_probes: dict[str, str] = {}


def register_state_probe(name: str, sql_expression: str) -> None:
    if not name.isidentifier():
        raise ValueError(f"State probe name {name!r} must be an identifier")
    _state_probes[name] = sql_expression


def state_probes() -> dict[str, str]:
    return dict(_state_probes)


def notify_state_listeners(result: StateReportResult) -> None:
    for listener in list(_state_listeners):
        listener(result)
