"""Celery tasks: the periodic AgentKit sync and the dispatch relay. Thin: they call services."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from agentkit_bridge import relay, services


@shared_task(name="agentkit_bridge.tasks.sync_agents", expires=settings.AGENTKIT_POLL_INTERVAL, ignore_result=True)
def sync_agents(min_gap_seconds: float | None = None) -> dict[str, Any]:
    """Poll AgentKit's agent listing once (scheduled every AGENTKIT_POLL_INTERVAL by django-celery-beat).

    Every beat sends every tick: a sync within half an interval of the last one is skipped, so several beats still
    give one sync per interval. Pass ``min_gap_seconds=0`` for an immediate sync whatever ran before."""
    if min_gap_seconds is None:
        min_gap_seconds = settings.AGENTKIT_POLL_INTERVAL / 2
    run = services.sync_agents_run(min_gap_seconds=min_gap_seconds)
    return {"syncRunId": run.pk, "outcome": run.outcome}


@shared_task(name="agentkit_bridge.tasks.relay_dispatches", acks_late=True, ignore_result=True)
def relay_dispatches(refs: list[str] | None = None) -> dict[str, Any]:
    """Send these outbox dispatches to AgentKit (see ``agentkit_bridge.relay``). Safe to run twice: a ref already
    sent, or no longer current, is not sent again."""
    report = relay.dispatches_relay(refs=refs)
    return {"sent": report.sent, "accepted": report.accepted, "stale": len(report.stale)}
