"""Models are tolerant of what a newer (or older) server sends, and keep the raw JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from opscore_sdk import Agent, Event, Session, WorkflowDefinition
from opscore_sdk.models import parse_datetime


def test_unknown_fields_are_ignored_but_kept_in_raw():
    data = {"agentId": "a", "state": "idle", "brandNewField": {"x": 1}}
    agent = Agent.from_dict(data)
    assert agent.agent_id == "a"
    assert agent.raw["brandNewField"] == {"x": 1}
    assert agent.to_dict() == data
    assert agent.to_dict() is not data


def test_missing_and_null_fields_get_defaults():
    agent = Agent.from_dict({"agentId": "a", "capabilities": None, "metadata": None, "recentHistory": None})
    assert agent.capabilities == [] and agent.metadata == {} and agent.recent_history == []
    assert agent.state is None and agent.last_seen_at is None
    assert Session.from_dict(None).tasks == []


def test_timestamps_become_aware_datetimes():
    assert parse_datetime("2026-11-24T09:00:00Z") == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert parse_datetime("2026-11-24T10:00:00.5+01:00") == datetime(
        2026, 11, 24, 10, 0, 0, 500000, tzinfo=timezone(timedelta(hours=1))
    )
    assert parse_datetime("2026-11-24T09:00:00").tzinfo is not None
    assert parse_datetime("not a time") is None
    assert parse_datetime(12) is None
    event = Event.from_dict({"id": 3, "createdAt": "garbage", "eventType": "x"})
    assert event.created_at is None and event.id == 3


def test_nested_models_are_built():
    definition = WorkflowDefinition.from_dict(
        {"id": "wf", "tasks": [{"taskId": "a", "agentCapability": "c1"}, {"taskId": "b", "agentCapability": "c1"}]}
    )
    assert [t.task_id for t in definition.tasks] == ["a", "b"]
    assert definition.capabilities == ["c1"]
    session = Session.from_dict({"status": "running", "tasks": [{"taskId": "a", "status": "completed"}]})
    assert not session.is_finished
    assert session.tasks[0].is_finished
