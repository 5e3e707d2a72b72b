"""The agent list/detail/history endpoints and admin pages make a fixed number of queries, however many rows.

Each check runs the page with few and with many rows: an N+1 shows up as a count that grows with the rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lifecycle.models import Agent, AgentSource, AgentStateRecord

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def make_agents(count: int, history_each: int = 3, start: int = 0) -> list[Agent]:
    agents = Agent.objects.bulk_create(
        Agent(
            agent_id=f"qc-agent-{i:03d}",
            name=f"Agent {i}",
            capabilities=["summarise", f"cap-{i % 3}"],
            capabilities_known=True,
            source=AgentSource.WEBHOOK,
            state="idle",
            state_timestamp=BASE,
            last_seen_at=BASE,
            assigned_task="task-1" if i % 2 else "",
        )
        for i in range(start, start + count)
    )
    AgentStateRecord.objects.bulk_create(
        AgentStateRecord(
            agent=agent, state="active" if j % 2 else "idle", reported_at=BASE + timedelta(seconds=j), received_at=BASE
        )
        for agent in agents
        for j in range(history_each)
    )
    return agents


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(captured.captured_queries)


def assert_constant_queries(client, url: str, maximum: int, *, grow) -> None:
    """Count the queries of ``url``, add rows with ``grow()``, count again: same count, within ``maximum``."""
    queries_for(client, url)  # warm per-process caches (content types, permissions) first
    few = queries_for(client, url)
    grow()
    many = queries_for(client, url)
    assert many == few, f"{url}: {few} queries with few rows, {many} with many (N+1)"
    assert many <= maximum, f"{url}: {many} queries (at most {maximum} expected)"


def test_agent_list_queries_do_not_grow_with_agents(operator_api_client, django_assert_max_num_queries):
    make_agents(3)
    assert_constant_queries(
        operator_api_client, "/v1/opscore/agents?page_size=100", 2, grow=lambda: make_agents(60, start=3)
    )
    with django_assert_max_num_queries(2):
        assert len(operator_api_client.get("/v1/opscore/agents?page_size=100").json()["results"]) == 63


def test_filtered_agent_list_queries_are_constant(operator_api_client):
    make_agents(3)
    url = "/v1/opscore/agents?state=idle&capability=summarise&registered=true&stale=false&search=agent"
    assert_constant_queries(operator_api_client, url, 2, grow=lambda: make_agents(40, start=3))


def test_agent_detail_queries_do_not_grow_with_history(operator_api_client, django_assert_num_queries):
    (agent,) = make_agents(1, history_each=2)
    url = f"/v1/opscore/agents/{agent.agent_id}"
    assert_constant_queries(
        operator_api_client,
        url,
        2,
        grow=lambda: AgentStateRecord.objects.bulk_create(
            AgentStateRecord(agent=agent, state="idle", reported_at=BASE + timedelta(minutes=j), received_at=BASE)
            for j in range(1, 60)
        ),
    )
    with django_assert_num_queries(2):  # the agent, its 20 newest reports
        assert len(operator_api_client.get(url).json()["recentHistory"]) == 20


def test_agent_history_queries_do_not_grow_with_rows(operator_api_client, django_assert_num_queries):
    (agent,) = make_agents(1, history_each=2)
    url = f"/v1/opscore/agents/{agent.agent_id}/history?page_size=200"
    assert_constant_queries(
        operator_api_client,
        url,
        3,
        grow=lambda: AgentStateRecord.objects.bulk_create(
            AgentStateRecord(agent=agent, state="idle", reported_at=BASE + timedelta(minutes=j), received_at=BASE)
            for j in range(1, 120)
        ),
    )
    with django_assert_num_queries(3):  # the agent, the count, the page
        assert operator_api_client.get(url).json()["count"] == 121


def test_current_state_is_one_query(api_client, django_assert_num_queries):
    (agent,) = make_agents(1)
    with django_assert_num_queries(1):
        assert api_client.get(f"/v1/opscore/agent/{agent.agent_id}/state").status_code == 200


def test_admin_agent_changelist_queries_do_not_grow_with_agents(staff_client):
    make_agents(3)
    assert_constant_queries(staff_client, "/admin/lifecycle/agent/", 12, grow=lambda: make_agents(80, start=3))


def test_admin_agent_change_page_queries_do_not_grow_with_history(staff_client):
    (agent,) = make_agents(1, history_each=2)
    url = f"/admin/lifecycle/agent/{agent.pk}/change/"
    assert_constant_queries(
        staff_client,
        url,
        12,
        grow=lambda: AgentStateRecord.objects.bulk_create(
            AgentStateRecord(agent=agent, state="idle", reported_at=BASE + timedelta(minutes=j), received_at=BASE)
            for j in range(1, 80)
        ),
    )


def test_admin_state_record_changelist_queries_do_not_grow_with_rows(staff_client):
    make_agents(2)
    assert_constant_queries(
        staff_client, "/admin/lifecycle/agentstaterecord/", 10, grow=lambda: make_agents(40, history_each=4, start=2)
    )


def test_admin_state_record_change_page_is_constant(staff_client):
    (agent,) = make_agents(1, history_each=1)
    record = AgentStateRecord.objects.get(agent=agent)
    assert queries_for(staff_client, f"/admin/lifecycle/agentstaterecord/{record.pk}/change/") <= 8
