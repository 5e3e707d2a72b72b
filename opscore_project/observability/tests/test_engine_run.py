"""A full workflow run through the real engine: its events, the session page, aggregates and metrics."""

from __future__ import annotations

import pytest

from opscore_project.observability import selectors
from opscore_project.observability.models import OperationEvent
from workflows import services
from workflows.tests.conftest import Clock, SentTasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _only_this_tests_counters():
    """Counters start at zero: other processes of the test run (live servers, workers) flush theirs a moment
    after their own test, into the same database."""
    from opscore_project.observability.models import MetricCounter

    MetricCounter.objects.all().delete()


# fetch, then two parallel branches: summarise (completes) and translate (fails, no retries).
DEFINITION = {
    "id": "report",
    "version": "1.0",
    "tasks": [
        {"taskId": "fetch", "agentCapability": "fetch"},
        {"taskId": "summarise", "agentCapability": "summarise", "dependsOn": ["fetch"]},
        {"taskId": "translate", "agentCapability": "translate", "dependsOn": ["fetch"], "maxRetries": 0},
    ],
}


@pytest.fixture
def engine_run(monkeypatch, django_capture_on_commit_callbacks):
    from lifecycle.models import Agent
    from lifecycle.services import agent_state_report

    monkeypatch.setattr("workflows.dispatching.send_tasks", SentTasks())
    clock = Clock()

    def report(agent_id: str, state: str, details: dict | None = None) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            agent_state_report(agent_id=agent_id, state=state, details=details or {}, reported_at=clock.tick())
            services.engine_drain()

    for agent_id, capability in (("ag-fetch", "fetch"), ("ag-sum", "summarise"), ("ag-tr", "translate")):
        Agent.objects.create(
            agent_id=agent_id, name=agent_id, capabilities=[capability], capabilities_known=True, source="webhook",
            state="idle", state_timestamp=clock.now, last_seen_at=clock.now,
        )  # fmt: skip
    definition, _ = services.definition_create(data=DEFINITION)
    first_event = (OperationEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    with django_capture_on_commit_callbacks(execute=True):
        session, _ = services.session_start(definition=definition, agent=None, initial_payload={})
        services.engine_drain()
    report("ag-fetch", "active")
    report("ag-fetch", "idle", {"result": {"pages": 3}})
    report("ag-sum", "active")
    report("ag-tr", "active")
    report("ag-sum", "idle", {"result": {"summary": "short"}})
    report("ag-tr", "error", {"error_code": "QUOTA", "message": "quota exceeded"})
    session.refresh_from_db()
    return session, first_event


def test_every_transition_of_an_engine_run_is_logged(engine_run):
    session, first_event = engine_run
    assert session.status == "failed"
    logged = list(
        OperationEvent.objects.filter(id__gte=first_event, session_id=str(session.pk))
        .order_by("id")
        .values_list("event_type", "task_id")
    )
    types = [event_type for event_type, _ in logged]
    assert types[0] == "session.created"
    assert "session.started" in types
    assert types.count("task.dispatched") == 3
    assert types.count("task.running") == 3
    assert types.count("task.completed") == 2
    assert types.count("task.failed") == 1
    assert types[-1] == "session.failed"
    assert all(task_id for event_type, task_id in logged if event_type.startswith("task."))
    # the agents' own transitions are in the log too (written by the state-report statement)
    assert OperationEvent.objects.filter(event_type="agent.state_changed", agent_id="ag-tr").count() == 2


def test_the_session_timeline_reads_the_task_runs(engine_run, staff_client):
    session, _ = engine_run
    timeline = selectors.session_timeline(str(session.pk))
    assert timeline["source"] == "task_runs"
    tasks = {t["task_id"]: t for t in timeline["tasks"]}
    assert tasks["summarise"]["lane"] != tasks["translate"]["lane"]
    assert tasks["translate"]["status"] == "failed" and "QUOTA" in tasks["translate"]["error"]
    assert tasks["fetch"]["agent_id"] == "ag-fetch"
    assert tasks["fetch"]["run_ms"] is not None and tasks["fetch"]["total_ms"] >= tasks["fetch"]["run_ms"]
    html = staff_client.get(f"/dashboard/sessions/{session.pk}/").content.decode()
    assert 'class="bar-run status-failed"' in html and "QUOTA" in html
    assert staff_client.get("/dashboard/sessions/not-a-uuid/").status_code == 404


def test_aggregates_and_metrics_come_from_the_task_runs(engine_run, metrics_client):
    from datetime import timedelta

    from django.utils import timezone

    from opscore_project.observability.tests.test_metrics import sample

    aggregates = selectors.task_aggregates(since=timezone.now() - timedelta(hours=1))
    assert aggregates["source"] == "task_runs"
    (workflow,) = aggregates["by_workflow"]
    assert (workflow["key"], workflow["count"], workflow["failures"]) == ("report", 3, 1)
    agents = {row["key"]: row for row in aggregates["by_agent"]}
    assert agents["ag-tr"]["failure_rate"] == 1 and agents["ag-fetch"]["failure_rate"] == 0

    text = metrics_client.get("/metrics").content.decode()
    assert sample(text, "opscore_sessions", status="failed") == 1
    assert sample(text, "opscore_task_runs", status="completed") == 2
    assert sample(text, "opscore_task_runs", status="failed") == 1
    assert sample(text, "opscore_task_duration_seconds_count", status="completed") == 2
    assert sample(text, "opscore_task_duration_seconds_bucket", status="completed", le="+Inf") == 2
    assert sample(text, "opscore_task_duration_seconds_bucket", status="completed", le="1.0") == 2  # runs of ms
    assert sample(text, "opscore_task_duration_seconds_count", status="failed") == 1
