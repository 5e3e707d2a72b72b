from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.conf import settings
from django.utils import timezone

from agentkit_bridge import services
from agentkit_bridge.models import SyncRun
from agentkit_bridge.services import SYNC_LOCK_NAME
from agentkit_bridge.tasks import sync_agents
from agentkit_bridge.tests.conftest import AGENTKIT, listed_agent, listing
from lifecycle import services as lifecycle_services
from lifecycle.models import Agent
from opscore_project import testing
from opscore_project.locks import lock_key
from opscore_project.observability.models import OperationEvent

pytestmark = pytest.mark.django_db
# Query counts and the advisory lock are Postgres behaviour (embedded SQLite chunks its IN lists).
postgres_only = pytest.mark.skipif(not settings.IS_POSTGRES, reason="Postgres only")

LIST_URL = f"{AGENTKIT}/v1/agents"


@pytest.fixture(autouse=True)
def _no_interval_guard(monkeypatch):
    """These tests sync several times within one polling interval; the task's once-per-interval guard (which
    keeps two beats from syncing twice per tick, tested below and in the fault suite) would skip all but the
    first, so the task runs without it here. Yields the unpatched service."""
    run = services.sync_agents_run
    monkeypatch.setattr(services, "sync_agents_run", lambda **_: run())
    return run


def serve(mocked_agentkit, *agents: dict) -> None:
    if mocked_agentkit.registered():
        mocked_agentkit.replace("GET", LIST_URL, json=listing(*agents))
    else:
        mocked_agentkit.get(LIST_URL, json=listing(*agents))


def report_state(agent_id: str, state: str = "active") -> None:
    lifecycle_services.agent_state_report(
        agent_id=agent_id, state=state, details={"x": 1}, reported_at=datetime(2026, 11, 24, 9, tzinfo=UTC)
    )


def test_a_sync_adds_listed_agents(mocked_agentkit):
    serve(mocked_agentkit, listed_agent("a1"), listed_agent("a2", capabilities=[]))
    result = sync_agents()
    run = SyncRun.objects.get()
    assert result == {"syncRunId": run.pk, "outcome": "success"}
    assert (run.outcome, run.listed, run.added, run.updated, run.deregistered) == ("success", 2, 2, 0, 0)
    assert run.ended_at >= run.started_at
    a1 = Agent.objects.get(agent_id="a1")
    assert (a1.name, a1.source, a1.capabilities, a1.capabilities_known) == ("name-a1", "poll", ["summarise"], True)
    assert a1.contact_endpoint == "http://a1.test/" and a1.registered_at is not None
    assert Agent.objects.get(agent_id="a2").capabilities_known  # known to be empty, not unknown
    assert OperationEvent.objects.filter(event_type="agent.discovered").count() == 2
    assert OperationEvent.objects.filter(event_type="sync.run").count() == 1


def test_an_unchanged_listing_writes_nothing_and_logs_no_event(mocked_agentkit):
    serve(mocked_agentkit, listed_agent("a1"))
    sync_agents()
    before = Agent.objects.values().get(agent_id="a1")
    events = OperationEvent.objects.count()
    sync_agents()
    assert Agent.objects.values().get(agent_id="a1") == before
    assert OperationEvent.objects.count() == events
    assert SyncRun.objects.count() == 2


def test_a_sync_updates_changed_details_and_keeps_the_registration_time(mocked_agentkit):
    serve(mocked_agentkit, listed_agent("a1"))
    sync_agents()
    registered_at = Agent.objects.get(agent_id="a1").registered_at
    serve(mocked_agentkit, listed_agent("a1", version="2.0", capabilities=["x", "y"], metadata={"k": "v"}))
    sync_agents()
    run = SyncRun.objects.first()
    assert (run.added, run.updated) == (0, 1)
    agent = Agent.objects.get(agent_id="a1")
    assert (agent.version, agent.capabilities, agent.metadata) == ("2.0", ["x", "y"], {"k": "v"})
    assert agent.registered_at == registered_at


def test_an_agent_missing_from_the_listing_is_deregistered_and_reregistered_when_back(mocked_agentkit):
    serve(mocked_agentkit, listed_agent("a1"), listed_agent("a2"))
    sync_agents()
    serve(mocked_agentkit, listed_agent("a1"))
    sync_agents()
    assert SyncRun.objects.first().deregistered == 1
    gone = Agent.objects.get(agent_id="a2")
    assert gone.deregistered_at is not None  # kept, with its history
    serve(mocked_agentkit, listed_agent("a1"), listed_agent("a2"))
    sync_agents()
    run = SyncRun.objects.first()
    assert (run.reregistered, run.deregistered, run.added) == (1, 0, 0)
    back = Agent.objects.get(agent_id="a2")
    assert back.deregistered_at is None and back.registered_at > gone.registered_at
    types = list(OperationEvent.objects.filter(agent_id="a2").order_by("id").values_list("event_type", flat=True))
    assert types == ["agent.discovered", "agent.deregistered", "agent.registered"]


def test_a_sync_fills_in_an_agent_known_from_state_reports_without_touching_its_state(mocked_agentkit):
    report_state("a1", "active")
    serve(mocked_agentkit, listed_agent("a1"))
    sync_agents()
    agent = Agent.objects.get(agent_id="a1")
    assert agent.source == "state_report"
    assert (agent.name, agent.capabilities_known) == ("name-a1", True)
    assert (agent.state, agent.state_details) == ("active", {"x": 1})
    assert SyncRun.objects.first().updated == 1


def test_agents_known_only_from_state_reports_are_not_deregistered(mocked_agentkit):
    report_state("reporter")
    serve(mocked_agentkit, listed_agent("a1"))
    sync_agents()
    agent = Agent.objects.get(agent_id="reporter")
    assert agent.deregistered_at is None and agent.registered_at is None
    assert agent.state == "active"


def test_a_sync_never_changes_the_current_state_of_a_listed_agent(mocked_agentkit):
    serve(mocked_agentkit, listed_agent("a1"))
    sync_agents()
    report_state("a1", "active")
    Agent.objects.filter(agent_id="a1").update(assigned_task="run-9")
    serve(mocked_agentkit, listed_agent("a1", version="9"))
    sync_agents()
    serve(mocked_agentkit)
    sync_agents()
    agent = Agent.objects.get(agent_id="a1")
    assert (agent.state, agent.state_details, agent.assigned_task) == ("active", {"x": 1}, "run-9")
    assert agent.deregistered_at is not None


@pytest.mark.parametrize("status", [404, 405])
def test_listing_unsupported_is_recorded_and_logged_once(mocked_agentkit, status, caplog):
    Agent.objects.create(agent_id="known", source="webhook", registered_at=timezone.now())
    mocked_agentkit.get(LIST_URL, json={"detail": "Not Found"}, status=status)
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            sync_agents()
    assert list(SyncRun.objects.values_list("outcome", flat=True)) == ["unsupported"] * 3
    assert str(status) in SyncRun.objects.first().error
    events = OperationEvent.objects.filter(event_type="sync.run")
    assert events.count() == 1
    assert events.get().level == "warning"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "listing" in r.getMessage()]
    assert len(warnings) == 1
    assert Agent.objects.get(agent_id="known").deregistered_at is None  # unsupported proves nothing


def test_a_change_of_outcome_is_logged_again(mocked_agentkit):
    mocked_agentkit.get(LIST_URL, status=404)
    sync_agents()
    mocked_agentkit.replace("GET", LIST_URL, json=listing())
    sync_agents()
    mocked_agentkit.replace("GET", LIST_URL, status=404)
    sync_agents()
    outcomes = [e.context["outcome"] for e in OperationEvent.objects.filter(event_type="sync.run").order_by("id")]
    assert outcomes == ["unsupported", "success", "unsupported"]


def test_an_unreachable_agentkit_is_recorded_as_failed(settings):
    from opscore_project.testing import free_port

    settings.AGENTKIT_API_URL = f"http://127.0.0.1:{free_port()}"
    sync_agents()
    run = SyncRun.objects.get()
    assert run.outcome == "failed" and "unreachable" in run.error


def test_a_server_error_is_recorded_as_failed_and_deregisters_nothing(mocked_agentkit):
    Agent.objects.create(agent_id="known", source="webhook", registered_at=timezone.now())
    mocked_agentkit.get(LIST_URL, body="boom", status=502)
    sync_agents()
    assert SyncRun.objects.get().outcome == "failed"
    assert Agent.objects.get(agent_id="known").deregistered_at is None


@postgres_only
def test_the_lock_prevents_overlapping_syncs(mocked_agentkit):
    serve(mocked_agentkit, listed_agent("a1"))
    with psycopg.connect(testing.current_database_url(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [lock_key(SYNC_LOCK_NAME)])
        result = sync_agents()
        other.execute("SELECT pg_advisory_unlock(%s)", [lock_key(SYNC_LOCK_NAME)])
    assert result["outcome"] == "skipped_locked"
    assert not Agent.objects.exists()
    assert len(mocked_agentkit.calls) == 0
    assert sync_agents()["outcome"] == "success"  # released again afterwards
    assert Agent.objects.filter(agent_id="a1").exists()


@postgres_only
def test_a_skipped_run_does_not_hide_the_previous_outcome(mocked_agentkit):
    mocked_agentkit.get(LIST_URL, status=404)
    sync_agents()
    with psycopg.connect(testing.current_database_url(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [lock_key(SYNC_LOCK_NAME)])
        sync_agents()
    sync_agents()
    assert OperationEvent.objects.filter(event_type="sync.run").count() == 1


def test_the_sync_task_has_an_expiry_and_the_schedule_names_it(settings):
    from opscore_project.schedules import default_schedules

    assert sync_agents.name == "agentkit_bridge.tasks.sync_agents"
    assert sync_agents.expires == settings.AGENTKIT_POLL_INTERVAL
    assert "agentkit_bridge.tasks.sync_agents" in [spec.task for spec in default_schedules()]


def test_setup_schedules_creates_the_poll_entry():
    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    call_command("opscore_setup_schedules")
    task = PeriodicTask.objects.get(task="agentkit_bridge.tasks.sync_agents")
    assert task.interval.every == 30 and task.expire_seconds == 30


def test_sync_runs_are_listed_read_only_in_the_admin(staff_client, mocked_agentkit):
    mocked_agentkit.get(LIST_URL, status=404)
    sync_agents()
    response = staff_client.get("/admin/agentkit_bridge/syncrun/")
    assert response.status_code == 200
    assert b"unsupported" in response.content.lower()
    assert staff_client.get("/admin/agentkit_bridge/syncrun/add/").status_code == 403


@postgres_only
def test_a_whole_sync_run_uses_the_same_number_of_queries_for_10_and_1000_agents(mocked_agentkit):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    used = []
    for size in (10, 1000):
        Agent.objects.all().delete()
        serve(mocked_agentkit, *(listed_agent(f"agent-{i}") for i in range(size)))
        with CaptureQueriesContext(connection) as first:
            assert sync_agents()["outcome"] == "success"
        with CaptureQueriesContext(connection) as unchanged:
            sync_agents()
        assert Agent.objects.filter(deregistered_at__isnull=True).count() == size
        used.append((len(first), len(unchanged)))
    assert used[0] == used[1], used


@postgres_only
def test_a_second_beat_tick_within_the_interval_does_not_sync_again(mocked_agentkit, _no_interval_guard):
    sync_agents_run = _no_interval_guard
    serve(mocked_agentkit, listed_agent("a1"))
    assert sync_agents_run(min_gap_seconds=15).outcome == "success"
    copy = sync_agents_run(min_gap_seconds=15)  # the other beat's message for the same tick
    assert copy.outcome == "skipped_locked" and "already ran" in copy.error
    assert len(mocked_agentkit.calls) == 1
    SyncRun.objects.filter(outcome="success").update(started_at=timezone.now() - timedelta(seconds=16))
    assert sync_agents_run(min_gap_seconds=15).outcome == "success"  # the next tick syncs
