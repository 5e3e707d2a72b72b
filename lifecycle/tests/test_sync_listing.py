from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings

from lifecycle import services
from lifecycle.models import Agent

pytestmark = pytest.mark.django_db
# Query counts and the advisory lock are Postgres behaviour (embedded SQLite chunks its IN lists).
postgres_only = pytest.mark.skipif(not settings.IS_POSTGRES, reason="Postgres only")

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Listed:
    agent_id: str
    name: str = "agent"
    version: str = "1.0"
    capabilities: list[str] = field(default_factory=lambda: ["summarise"])
    contact_endpoint: str = "http://agent/"
    metadata: dict[str, Any] = field(default_factory=dict)


def fleet(count: int, prefix: str = "agent", **overrides) -> list[Listed]:
    return [Listed(agent_id=f"{prefix}-{i:05d}", **overrides) for i in range(count)]


def test_it_creates_updates_and_deregisters():
    counts = services.agents_sync_listing(listed=fleet(3), now=NOW)
    assert (counts.listed, counts.added, counts.updated, counts.deregistered) == (3, 3, 0, 0)
    later = NOW + timedelta(minutes=1)
    listing = [Listed("agent-00000", version="2"), Listed("agent-00001")]
    counts = services.agents_sync_listing(listed=listing, now=later)
    assert counts.updated_ids == ("agent-00000",)
    assert counts.deregistered_ids == ("agent-00002",)
    assert Agent.objects.get(agent_id="agent-00002").deregistered_at == later
    assert Agent.objects.get(agent_id="agent-00000").registered_at == NOW


def test_an_agent_registered_after_the_listing_was_requested_is_not_deregistered():
    Agent.objects.create(agent_id="fresh", source="webhook", registered_at=NOW + timedelta(seconds=1))
    counts = services.agents_sync_listing(listed=[], now=NOW)
    assert counts.deregistered == 0


@postgres_only
@pytest.mark.parametrize("size", [10, 1000])
def test_first_import_query_count_does_not_depend_on_the_fleet_size(size, django_assert_max_num_queries):
    # SELECT existing + one INSERT ... ON CONFLICT batch + UPDATE deregistrations + savepoint/release.
    with django_assert_max_num_queries(5):
        counts = services.agents_sync_listing(listed=fleet(size), now=NOW)
    assert counts.added == size
    assert Agent.objects.count() == size


@postgres_only
@pytest.mark.parametrize("size", [10, 1000])
def test_resync_query_count_does_not_depend_on_the_fleet_size(size, django_assert_max_num_queries):
    services.agents_sync_listing(listed=fleet(size), now=NOW)
    changed = fleet(size // 2, version="2") + fleet(size - size // 2, prefix="new")
    with django_assert_max_num_queries(5):
        counts = services.agents_sync_listing(listed=changed, now=NOW + timedelta(minutes=1))
    assert (counts.updated, counts.added, counts.deregistered) == (size // 2, size - size // 2, size - size // 2)


@postgres_only
def test_query_counts_are_equal_for_10_and_1000_agents(django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    used = []
    for size, prefix in ((10, "small"), (1000, "large")):
        Agent.objects.all().delete()
        with CaptureQueriesContext(connection) as first:
            services.agents_sync_listing(listed=fleet(size, prefix=prefix), now=NOW)
        with CaptureQueriesContext(connection) as unchanged:
            services.agents_sync_listing(listed=fleet(size, prefix=prefix), now=NOW + timedelta(minutes=1))
        used.append((len(first), len(unchanged)))
    assert used[0] == used[1]
