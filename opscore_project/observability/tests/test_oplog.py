import pytest

from opscore_project.observability import events
from opscore_project.observability.context import request_id_var
from opscore_project.observability.counters import counters_flush
from opscore_project.observability.models import MetricCounter
from opscore_project.observability.oplog import counter_increments, log_operation

pytestmark = pytest.mark.django_db


def test_it_stores_the_event_with_the_current_request_id(json_logs):
    token = request_id_var.set("req-oplog-0001")
    try:
        event = log_operation(events.SESSION_STARTED, {"workflow_id": "wf"}, session_id="s1", agent_id="a1")
    finally:
        request_id_var.reset(token)
    event.refresh_from_db()
    assert event.request_id == "req-oplog-0001"
    (line,) = json_logs.find(logger="opscore.operations")
    assert line["event_type"] == "session.started"
    assert line["session_id"] == "s1" and line["agent_id"] == "a1" and line["request_id"] == "req-oplog-0001"
    assert line["event_id"] == event.pk


def test_the_positional_signature_still_works():
    event = log_operation("custom.thing", {"k": 1})
    assert event.event_type == "custom.thing" and event.context == {"k": 1} and event.level == "info"


def test_secret_context_keys_are_redacted():
    event = log_operation(events.SYNC_RUN, {"outcome": "ok", "api_key": "abc123456", "headers": {"Authorization": "x"}})
    assert event.context["api_key"] == "[REDACTED]"
    assert event.context["headers"]["Authorization"] == "[REDACTED]"


def test_counters_are_buffered_and_written_by_the_flush(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        log_operation(events.TASK_DISPATCHED, task_id="t1")
        log_operation(events.TASK_DISPATCHED, task_id="t2")
        log_operation(events.TASK_COMPLETED, {"duration_ms": 700}, task_id="t1")
    assert not MetricCounter.objects.exists()  # buffered in this process: no hot-row write per event
    counters_flush()
    values = {(c.name, c.labels): c.value for c in MetricCounter.objects.all()}
    assert values[("operation_events_total", "level=info,type=task.dispatched")] == 2
    assert values[("task_duration_seconds_bucket", "le=1.0,status=completed")] == 1
    assert values[("task_duration_seconds_sum", "status=completed")] == pytest.approx(0.7)


def test_counter_rows_accept_camel_case_durations():
    rows = counter_increments(events.TASK_FAILED, "error", {"durationMs": 20})
    assert ("task_duration_seconds_bucket", "le=0.05,status=failed", 1) in rows
