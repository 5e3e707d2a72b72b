"""Events of a full workflow run (simulated until the engine lands) through the API and the timeline."""

import pytest

from opscore_project.observability import selectors
from opscore_project.observability.tests.workflow_run import run_workflow

pytestmark = pytest.mark.django_db


def test_every_transition_of_a_run_is_in_the_log_in_order(operator_api_client):
    written = run_workflow("sess-42")
    response = operator_api_client.get(f"/v1/opscore/events?session=sess-42&after={written[0].pk - 1}")
    assert [row["eventType"] for row in response.json()["results"]] == [
        "session.started",
        "task.dispatched",
        "task.running",
        "task.completed",
        "task.dispatched",
        "task.dispatched",
        "task.running",
        "task.running",
        "task.completed",
        "task.retried",
        "task.failed",
        "session.failed",
    ]


def test_the_timeline_puts_parallel_branches_on_separate_rows():
    run_workflow("sess-43")
    timeline = selectors.session_timeline("sess-43")
    assert timeline["source"] == "events"
    assert timeline["session"]["status"] == "failed"
    tasks = {t["task_id"]: t for t in timeline["tasks"]}
    assert set(tasks) == {"fetch", "summarise", "translate"}
    assert tasks["summarise"]["lane"] != tasks["translate"]["lane"]
    assert timeline["lanes"] == 2
    assert tasks["translate"]["status"] == "failed"
    assert tasks["translate"]["error"] == "Quota exceeded on translation API"
    assert tasks["fetch"]["run_ms"] == pytest.approx(4000, abs=1)
    assert tasks["fetch"]["dispatch_latency_ms"] == pytest.approx(200, abs=1)
    assert tasks["fetch"]["total_ms"] == pytest.approx(4200, abs=1)
    assert 0 <= tasks["fetch"]["run_left_pct"] < tasks["summarise"]["run_left_pct"] < 100


def test_aggregates_per_workflow_and_agent_from_events(monkeypatch):
    """Without the engine's task runs (embedded deployments of old data), the events' durations are used."""
    monkeypatch.setattr(selectors, "_task_run_model", lambda: None)
    from datetime import timedelta

    from django.utils import timezone

    run_workflow("sess-44")
    run_workflow("sess-45")
    aggregates = selectors.task_aggregates(since=timezone.now() - timedelta(hours=1))
    assert aggregates["source"] == "events"
    (workflow,) = aggregates["by_workflow"]
    assert workflow["key"] == "wf-report" and workflow["count"] == 6 and workflow["failures"] == 2
    assert workflow["failure_rate"] == pytest.approx(1 / 3)
    agents = {row["key"]: row for row in aggregates["by_agent"]}
    assert agents["agent-a"]["count"] == 4 and agents["agent-a"]["failure_rate"] == 0
    assert agents["agent-a"]["p50_ms"] == pytest.approx(4500)
    assert agents["agent-b"]["failure_rate"] == 1
