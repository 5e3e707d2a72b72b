import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from agentkit_bridge.models import DispatchAttempt, SyncRun
from lifecycle import services as lifecycle_services
from lifecycle.models import Agent
from opscore_project.observability import events
from opscore_project.observability.oplog import log_operation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _only_this_tests_counters():
    """Counters start at zero: other processes of the test run (live servers, workers) flush theirs a moment
    after their own test, into the same database."""
    from opscore_project.observability.models import MetricCounter

    MetricCounter.objects.all().delete()


def sample(text: str, name: str, **labels) -> float | None:
    """The value of one series in Prometheus text format."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == {k: str(v) for k, v in labels.items()}:
            return float(match.group(3))
    return None


def test_metrics_require_the_metrics_scope_or_staff(anon_client, api_client, metrics_client, staff_client):
    response = anon_client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert anon_client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    refused = api_client.get("/metrics")  # the agents' shared key
    assert refused.status_code == 403 and "'metrics' scope" in refused.json()["message"]
    assert metrics_client.get("/metrics").status_code == 200
    assert staff_client.get("/metrics").status_code == 200


def test_metrics_can_be_public(anon_client, settings):
    settings.OPSCORE_METRICS_PUBLIC = True
    assert anon_client.get("/metrics").status_code == 200


def test_metrics_expose_the_listed_series_with_correct_values(
    metrics_client, django_capture_on_commit_callbacks, monkeypatch
):
    from opscore_project.observability import selectors

    # Task durations from events here; test_engine_run covers the engine's task runs.
    monkeypatch.setattr(selectors, "_task_run_model", lambda: None)
    now = timezone.now()
    for index, state in enumerate(["idle", "idle", "active", "error"]):
        lifecycle_services.agent_state_report(agent_id=f"a{index}", state=state, details={}, reported_at=now)
    lifecycle_services.agent_state_report(agent_id="a0", state="idle", details={}, reported_at=now + timedelta(1))
    Agent.objects.create(agent_id="silent", source="webhook", drained_at=now)
    Agent.objects.filter(agent_id__in=["a2", "a3"]).update(breaker_state="open")
    for ref, attempt, outcome in [
        ("r1", 1, "accepted"),
        ("r2", 1, "retrying"),
        ("r2", 2, "failed"),
        ("r3", 1, "accepted"),
    ]:
        DispatchAttempt.objects.create(dispatch_ref=ref, agent_id="a1", attempt=attempt, outcome=outcome)
    last_ok = now - timedelta(seconds=30)
    SyncRun.objects.create(outcome="success", started_at=last_ok - timedelta(seconds=30))
    SyncRun.objects.create(outcome="success", started_at=last_ok)
    SyncRun.objects.create(outcome="failed", started_at=now - timedelta(seconds=90), error="timeout")
    with django_capture_on_commit_callbacks(execute=True):
        log_operation(events.TASK_DISPATCHED, task_id="t1")
        log_operation(events.TASK_DISPATCHED, task_id="t2")
        log_operation(events.TASK_COMPLETED, {"duration_ms": 300}, task_id="t1")
        log_operation(events.TASK_COMPLETED, {"duration_ms": 4000}, task_id="t2")
        log_operation(events.TASK_FAILED, {"duration_ms": 50}, task_id="t3", level="error")

    response = metrics_client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert sample(text, "opscore_agents", state="idle") == 2
    assert sample(text, "opscore_agents", state="active") == 1
    assert sample(text, "opscore_agents", state="error") == 1
    assert sample(text, "opscore_agents", state="unknown") == 1
    assert sample(text, "opscore_agents_registered") == 5
    assert sample(text, "opscore_agents_drained") == 1
    assert sample(text, "opscore_agents_quarantined") == 2
    assert sample(text, "opscore_state_reports_last_minute") == 5
    assert sample(text, "opscore_dispatch_attempts_total", outcome="accepted") == 2
    assert sample(text, "opscore_dispatch_attempts_total", outcome="retrying") == 1
    assert sample(text, "opscore_dispatch_attempts_total", outcome="failed") == 1
    assert sample(text, "opscore_dispatch_failures_total") == 2
    assert sample(text, "opscore_sync_runs_retained", outcome="success") == 2
    assert sample(text, "opscore_sync_runs_retained", outcome="failed") == 1
    assert sample(text, "opscore_sync_last_run_timestamp_seconds", outcome="success") == pytest.approx(
        last_ok.timestamp()
    )
    assert sample(text, "opscore_task_duration_seconds_bucket", status="completed", le="0.25") == 0
    assert sample(text, "opscore_task_duration_seconds_bucket", status="completed", le="0.5") == 1
    assert sample(text, "opscore_task_duration_seconds_bucket", status="completed", le="5.0") == 2
    assert sample(text, "opscore_task_duration_seconds_bucket", status="completed", le="+Inf") == 2
    assert sample(text, "opscore_task_duration_seconds_count", status="completed") == 2
    assert sample(text, "opscore_task_duration_seconds_sum", status="completed") == pytest.approx(4.3)
    assert sample(text, "opscore_task_duration_seconds_count", status="failed") == 1
    assert sample(text, "opscore_operation_events_total", type="task.dispatched", level="info") == 2
    assert "# TYPE opscore_sessions gauge" in text
    assert "# TYPE opscore_task_runs gauge" in text


def test_old_state_reports_do_not_count_in_the_last_minute(metrics_client):
    old = datetime(2026, 1, 1, tzinfo=UTC)
    lifecycle_services.agent_state_report(
        agent_id="old", state="idle", details={}, reported_at=old, now=timezone.now() - timedelta(minutes=5)
    )
    text = metrics_client.get("/metrics").content.decode()
    assert sample(text, "opscore_state_reports_last_minute") == 0
