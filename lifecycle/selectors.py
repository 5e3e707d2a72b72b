"""Reads of agents and their history that the API and the admin share."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from lifecycle.models import Agent, AgentStateRecord, BreakerState


def with_capability(queryset: QuerySet[Agent], capability: str) -> QuerySet[Agent]:
    """Agents whose known capabilities include ``capability`` (jsonb containment on Postgres)."""
    if settings.IS_POSTGRES:
        return queryset.filter(capabilities_known=True, capabilities__contains=[capability])
    # SQLite (embedded mode) has no JSON containment: match the serialised list element instead.
    return queryset.filter(capabilities_known=True, capabilities__icontains=f'"{capability}"')


def agent_list(
    *,
    state: str | None = None,
    capability: str | None = None,
    registered: bool | None = None,
    stale: bool | None = None,
    source: str | None = None,
    search: str | None = None,
    drained: bool | None = None,
    quarantined: bool | None = None,
) -> QuerySet[Agent]:
    queryset = Agent.objects.all()
    if drained is not None:
        queryset = queryset.filter(drained_at__isnull=not drained)
    if quarantined is not None:
        closed = Q(breaker_state=BreakerState.CLOSED)
        queryset = queryset.exclude(closed) if quarantined else queryset.filter(closed)
    if state:
        queryset = queryset.filter(state=state)
    if capability:
        queryset = with_capability(queryset, capability)
    if registered is not None:
        queryset = queryset.filter(deregistered_at__isnull=registered)
    if source:
        queryset = queryset.filter(source=source)
    if stale is not None:
        cutoff = timezone.now() - timedelta(seconds=settings.OPSCORE_AGENT_STALE_SECONDS)
        stale_q = Q(last_seen_at__lt=cutoff) | Q(last_seen_at__isnull=True, created_at__lt=cutoff)
        queryset = queryset.filter(stale_q) if stale else queryset.exclude(stale_q)
    if search:
        queryset = queryset.filter(Q(agent_id__icontains=search) | Q(name__icontains=search))
    return queryset.order_by("agent_id")


def agent_get(*, agent_id: str) -> Agent | None:
    return Agent.objects.filter(agent_id=agent_id).first()


def agent_history(*, agent: Agent) -> QuerySet[AgentStateRecord]:
    return AgentStateRecord.objects.filter(agent=agent).order_by("-reported_at", "-id")


def agent_counts_by_state() -> dict[str, int]:
    """Agent counts per current state ('' = never reported), for the admin index and metrics."""
    rows = Agent.objects.values("state").annotate(count=Count("id")).order_by("state")
    return {row["state"] or "unknown": row["count"] for row in rows}
