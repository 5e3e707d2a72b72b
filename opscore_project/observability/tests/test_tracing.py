from datetime import UTC, datetime, timedelta

import pytest

from opscore_project.observability.tracing import end_trace, start_trace, trace, trace_id_for


def test_trace_records_a_span_with_ids_and_nests(json_logs):
    with trace("dispatch", session_id="s1", task_id="t1") as outer:
        with trace("http.post", agent_id="a1") as inner:
            import logging

            logging.getLogger("opscore.test").info("inside")
    spans = [line for line in json_logs.lines() if line["logger"] == "opscore.trace"]
    assert [s["span"]["name"] for s in spans] == ["http.post", "dispatch"]
    inner_line, outer_line = spans
    assert inner_line["span"]["trace_id"] == outer_line["span"]["trace_id"] == outer.trace_id
    assert inner_line["span"]["parent_span_id"] == outer.span_id
    assert inner_line["span"]["span_id"] == inner.span_id
    assert outer_line["session_id"] == "s1" and outer_line["task_id"] == "t1"
    assert isinstance(outer_line["span"]["duration_ms"], float) and outer_line["span"]["start"]
    (inside,) = json_logs.find(logger="opscore.test")
    assert inside["session_id"] == "s1" and inside["agent_id"] == "a1" and inside["trace_id"] == outer.trace_id


def test_a_failing_block_marks_the_span(json_logs):
    with pytest.raises(ValueError), trace("boom"):
        raise ValueError("x")
    (line,) = json_logs.find(logger="opscore.trace")
    assert line["span"]["status"] == "error"


def test_start_and_end_trace_share_the_task_trace_id(json_logs):
    start_trace("run-42", session_id="s9")
    span = end_trace("run-42", status="ok")
    assert span.trace_id == trace_id_for("run-42")
    lines = json_logs.find(logger="opscore.trace")
    assert len(lines) == 2
    assert lines[1]["span"]["duration_ms"] >= 0 and lines[1]["task_id"] == "run-42"


def test_end_trace_in_another_process_uses_started_at():
    span = end_trace("never-started", started_at=datetime.now(tz=UTC) - timedelta(seconds=2))
    assert 1900 <= span.duration_ms <= 5000
    assert span.trace_id == trace_id_for("never-started")
