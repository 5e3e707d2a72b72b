"""The dispatch hook the workflow engine listens on (explicit registration, no Django signals).

The engine registers a listener in its AppConfig.ready(); the relay calls it with the dispatches that reached
their final outcome (accepted, or failed permanently / retries exhausted): inside the transaction that records
them when any failed, right after the single statement that records them when all were accepted. A dispatch
sent again after a relay died may be announced twice: guard by the task run's status and ref.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class DispatchOutcome:
    dispatch_ref: str
    agent_id: str
    accepted: bool
    # "" when accepted, else one of: "agent_unknown" | "rejected" | "unreachable" | "timeout" | "server_error"
    # | "rate_limited" | "malformed"
    error_kind: str
    error: str
    status_code: int | None
    attempts: int
    finished_at: datetime


DispatchListener = Callable[[list[DispatchOutcome]], None]
_dispatch_listeners: list[DispatchListener] = []


def register_dispatch_listener(fn: DispatchListener) -> None:
    if fn not in _dispatch_listeners:
        _dispatch_listeners.append(fn)


def unregister_dispatch_listener(fn: DispatchListener) -> None:
    if fn in _dispatch_listeners:
        _dispatch_listeners.remove(fn)


def notify_dispatch_listeners(outcomes: list[DispatchOutcome]) -> None:
    if not outcomes:
        return
    for listener in list(_dispatch_listeners):
        listener(outcomes)
