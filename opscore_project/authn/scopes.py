"""API scopes: what a key or token may do (docs/security.md).

``agent``    exactly what AgentKit agents and the AgentKit SDK use (contract section 5): report and read an
             agent's state, trigger the per-agent workflow, read a session by id.
``operator`` definitions, sessions (list, cancel, retry), the operation log, agents; includes ``agent``.
``metrics``  scrape ``/metrics``.
``admin``    everything.
"""

from __future__ import annotations

from collections.abc import Iterable

AGENT = "agent"
OPERATOR = "operator"
METRICS = "metrics"
ADMIN = "admin"

SCOPES = (AGENT, OPERATOR, METRICS, ADMIN)
SCOPE_CHOICES = [
    (AGENT, "agent: report and read agent states, trigger an agent's workflow, read a session"),
    (OPERATOR, "operator: definitions, sessions, cancel/retry, events, agents (includes agent)"),
    (METRICS, "metrics: scrape /metrics"),
    (ADMIN, "admin: everything"),
]

_IMPLIED = {
    AGENT: {AGENT},
    OPERATOR: {OPERATOR, AGENT},
    METRICS: {METRICS},
    ADMIN: set(SCOPES),
}


def effective_scopes(granted: Iterable[str]) -> frozenset[str]:
    """The scopes ``granted`` amounts to, with the ones each implies (unknown names are ignored)."""
    result: set[str] = set()
    for scope in granted:
        result |= _IMPLIED.get(scope, set())
    return frozenset(result)


def parse_scopes(raw: str) -> list[str]:
    """Scopes stored as a space-separated string, in canonical order."""
    names = set(raw.replace(",", " ").split())
    return [scope for scope in SCOPES if scope in names]


def scopes_for_user(user) -> frozenset[str]:
    """A logged-in admin user (browsable API, dashboard): superusers get ``admin``, staff ``operator`` and
    ``metrics``, everyone else nothing."""
    if not getattr(user, "is_active", False) or not getattr(user, "is_authenticated", False):
        return frozenset()
    if user.is_superuser:
        return effective_scopes([ADMIN])
    if user.is_staff:
        return effective_scopes([OPERATOR, METRICS])
    return frozenset()
