"""The state report hot path: one query, prepared on the server, no health-check round trip, survives a dead
persistent connection without losing the report."""

from __future__ import annotations

from unittest import mock

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from lifecycle.models import AgentStateRecord

# The one-statement write path is Postgres's; the embedded SQLite mode uses the ORM twin.
postgres_only = pytest.mark.skipif(not settings.IS_POSTGRES, reason="Postgres write path")

BODY = '{{"agentId":"{a}","timestamp":"2026-11-24T09:00:{s:02d}.123456+00:00","state":"{state}","details":{{}}}}'


def post_report(client, agent_id: str, second: int, state: str = "idle"):
    body = BODY.format(a=agent_id, s=second, state=state)
    return client.post(f"/v1/opscore/agent/{agent_id}/state", body, content_type="application/json")


@postgres_only
@pytest.mark.django_db
def test_a_state_report_is_one_query(api_client, django_assert_num_queries):
    post_report(api_client, "agent-1", 0)
    with django_assert_num_queries(1):
        assert post_report(api_client, "agent-1", 1, "active").status_code == 202
    # An idle report from a free agent asks the workflow engine's "is any task waiting?" inside the same
    # statement (a state probe), so it is one query too.
    with django_assert_num_queries(1):
        assert post_report(api_client, "agent-1", 2, "idle").status_code == 202


@postgres_only
@pytest.mark.django_db
def test_the_state_write_is_prepared_on_the_server_after_a_few_reports(api_client):
    for second in range(5):
        assert post_report(api_client, "agent-1", second).status_code == 202
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%lifecycle_agentstaterecord%"]
        )
        assert cursor.fetchone()[0] == 1
    assert AgentStateRecord.objects.filter(agent__agent_id="agent-1").count() == 5


@postgres_only
@pytest.mark.django_db
def test_the_write_itself_is_the_per_request_health_check(api_client, settings):
    post_report(api_client, "agent-1", 0)
    connection.health_check_enabled, connection.health_check_done = True, False
    with mock.patch.object(connection, "is_usable", wraps=connection.is_usable) as is_usable:
        assert post_report(api_client, "agent-1", 1).status_code == 202
    assert is_usable.call_count == 0
    assert connection.health_check_done


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_report_on_a_dead_persistent_connection_is_stored_on_a_fresh_one(api_client):
    assert post_report(api_client, "agent-1", 0).status_code == 202
    old_pid = connection.connection.info.backend_pid
    settings_dict = connection.settings_dict
    with psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"] or None,
        password=settings_dict["PASSWORD"] or None,
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [old_pid])

    assert post_report(api_client, "agent-1", 1).status_code == 202
    assert connection.connection.info.backend_pid != old_pid
    assert AgentStateRecord.objects.filter(agent__agent_id="agent-1").count() == 2


@postgres_only
@pytest.mark.django_db
def test_no_index_covers_a_column_every_state_report_changes():
    """Keeps the agent update of each report a HOT update (no index maintenance); see Agent.Meta.indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, a.attname
            FROM pg_index x
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (x.indkey)
            WHERE t.relname = 'lifecycle_agent'
              AND a.attname IN ('state', 'state_timestamp', 'state_details', 'last_seen_at', 'updated_at')
            """
        )
        assert cursor.fetchall() == []


@pytest.mark.django_db
def test_registered_probes_are_answered_by_the_state_write(monkeypatch):
    from django.utils import timezone

    from lifecycle import hooks, services

    monkeypatch.setitem(hooks._state_probes, "is_idle_report", hooks.StateProbe("%(state)s = 'idle'"))
    now = timezone.now()
    idle = services.agent_state_report(agent_id="p1", state="idle", details={}, reported_at=now)
    active = services.agent_state_report(agent_id="p1", state="active", details={}, reported_at=now)
    assert idle.probes["is_idle_report"] is True
    assert active.probes["is_idle_report"] is False
