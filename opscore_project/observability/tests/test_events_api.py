from datetime import timedelta

import pytest
from django.utils import timezone

from opscore_project.observability import events
from opscore_project.observability.models import OperationEvent
from opscore_project.observability.oplog import log_operation

pytestmark = pytest.mark.django_db


@pytest.fixture
def sample_events():
    now = timezone.now()
    rows = [
        ("agent.state_changed", "info", "agent-a", "", "", "State idle -> active", now - timedelta(hours=3)),
        ("task.dispatched", "info", "agent-a", "sess-1", "run-1", "Dispatched step one", now - timedelta(hours=2)),
        ("task.failed", "error", "agent-b", "sess-1", "run-2", "Step two blew up: quota", now - timedelta(hours=1)),
        ("session.failed", "error", "", "sess-1", "", "Session failed", now - timedelta(minutes=30)),
        ("sync.run", "warning", "", "", "", "AgentKit unreachable", now - timedelta(minutes=5)),
    ]
    return [
        OperationEvent.objects.create(
            event_type=t, level=lvl, agent_id=a, session_id=s, task_id=tk, message=m, created_at=c, request_id="rq"
        )
        for t, lvl, a, s, tk, m, c in rows
    ]


def types(response):
    assert response.status_code == 200, response.content
    return [row["eventType"] for row in response.json()["results"]]


def test_it_lists_events_newest_first_in_the_documented_shape(operator_api_client, sample_events):
    response = operator_api_client.get("/v1/opscore/events")
    body = response.json()
    assert body["count"] == 5
    first = body["results"][0]
    assert set(first) >= {
        "id",
        "createdAt",
        "level",
        "eventType",
        "agentId",
        "sessionId",
        "taskId",
        "message",
        "context",
    }
    assert types(response) == ["sync.run", "session.failed", "task.failed", "task.dispatched", "agent.state_changed"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("agent=agent-a", ["task.dispatched", "agent.state_changed"]),
        ("session=sess-1", ["session.failed", "task.failed", "task.dispatched"]),
        ("level=error", ["session.failed", "task.failed"]),
        ("level=error,warning", ["sync.run", "session.failed", "task.failed"]),
        ("type=task.failed", ["task.failed"]),
        ("type=task.*", ["task.failed", "task.dispatched"]),
        ("type=sync.run,session.failed", ["sync.run", "session.failed"]),
        ("q=quota", ["task.failed"]),
        ("q=RUN-1", ["task.dispatched"]),
        ("q=agent-b", ["task.failed"]),
        ("agent=agent-a&type=task.*", ["task.dispatched"]),
    ],
)
def test_filters_return_the_right_rows(operator_api_client, sample_events, query, expected):
    assert types(operator_api_client.get(f"/v1/opscore/events?{query}")) == expected


def test_time_range_filters(operator_api_client, sample_events):
    since = (timezone.now() - timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
    until = (timezone.now() - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    assert types(operator_api_client.get(f"/v1/opscore/events?since={since}&until={until}")) == [
        "session.failed",
        "task.failed",
    ]


def test_after_returns_newer_events_oldest_first(operator_api_client, sample_events):
    cursor = sample_events[2].pk
    new = log_operation(events.TASK_RETRIED, {"attempt": 2}, session_id="sess-1", task_id="run-2")
    response = operator_api_client.get(f"/v1/opscore/events?after={cursor}")
    assert [row["id"] for row in response.json()["results"]] == [sample_events[3].pk, sample_events[4].pk, new.pk]
    assert types(operator_api_client.get(f"/v1/opscore/events?after={new.pk}")) == []


def test_a_followed_event_carries_its_context(operator_api_client):
    event = log_operation(events.TASK_COMPLETED, {"duration_ms": 12.5}, agent_id="a1", session_id="s1", task_id="t1")
    (row,) = operator_api_client.get(f"/v1/opscore/events?after={event.pk - 1}").json()["results"]
    assert row["context"] == {"duration_ms": 12.5}
    assert (row["agentId"], row["sessionId"], row["taskId"]) == ("a1", "s1", "t1")


@pytest.mark.parametrize("query", ["level=loud", "after=abc", "since=yesterday", "until=2026-01-01T00:00"])
def test_bad_filters_are_rejected(operator_api_client, query):
    response = operator_api_client.get(f"/v1/opscore/events?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_it_requires_authentication(anon_client):
    assert anon_client.get("/v1/opscore/events").status_code == 401


def test_staff_session_can_read_events(staff_client, sample_events):
    assert staff_client.get("/v1/opscore/events?page_size=2").json()["count"] == 5
